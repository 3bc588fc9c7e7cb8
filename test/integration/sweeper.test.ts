/**
 * Rule 8 of issue 7, sweeping: a flood of unauthenticated requests that each write a row (opening a connect
 * link writes an authorization state) cannot grow a table beyond what the sweeper removes, on a real SQLite
 * file over real HTTP. PostgreSQL runs the same store methods in the conformance suite.
 */
import { randomBytes } from 'node:crypto'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { AUTH_STATE_GRACE_MS, builtInSweeps } from '../../src/background.ts'
import { Sweeper } from '../../src/core/maintenance/sweeper.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const stacks: Stack[] = []
afterEach(async () => {
  for (const stack of stacks.splice(0)) await stack.close()
})

function count(stack: Stack, table: 'auth_states' | 'connect_sessions'): number {
  const db = new DatabaseSync(stack.dbPath, { readOnly: true })
  try {
    const row = db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number | bigint }
    return Number(row.n)
  } finally {
    db.close()
  }
}

/** `total` GETs of `url`, `parallel` at a time; each answer must be `status`. */
async function flood(url: () => string, total: number, status: number, parallel = 16): Promise<void> {
  let next = 0
  const statuses = new Map<number, number>()
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < total) {
        next += 1
        const response = await fetch(url(), { redirect: 'manual' })
        await response.arrayBuffer()
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
      }
    }),
  )
  expect(Object.fromEntries(statuses)).toEqual({ [status]: total })
}

function sweeperFor(stack: Stack): Sweeper {
  return new Sweeper({ sweeps: builtInSweeps(stack.runtime.store), intervalMs: 60_000 }, stack.runtime.deps)
}

const deleted = (outcomes: { name: string; deleted: number | undefined }[], name: string) =>
  outcomes.find((o) => o.name === name)?.deleted

describe('the sweeper bounds what a flood of unauthenticated requests can store', () => {
  it('removes every state a flood of connect-link opens wrote, once expired, round after round', async () => {
    const stack = await startStack()
    stacks.push(stack)
    const sweeper = sweeperFor(stack)
    const ROUNDS = 3
    const PER_ROUND = 1000
    for (let round = 0; round < ROUNDS; round++) {
      const created = await stack.api('POST', '/v1/connect-sessions', { tenant_id: 'tenant-1', region: 'na' })
      expect(created.status).toBe(201)
      const link = String(created.json['url'])
      // Each open of the link starts a flow: one new auth_states row per request.
      await flood(() => link, PER_ROUND, 303)
      expect(count(stack, 'auth_states')).toBe(PER_ROUND)
      expect(count(stack, 'connect_sessions')).toBe(1)

      // Nothing is due yet: live states and sessions stay.
      const early = await sweeper.runOnce()
      expect(deleted(early, 'auth_states.expired')).toBe(0)
      expect(count(stack, 'auth_states')).toBe(PER_ROUND)

      // Past the states' life, the grace, and the connect session's hour: all of it goes.
      stack.clock.advance(stack.runtime.config.stateTtlMs + AUTH_STATE_GRACE_MS + 60_000)
      const outcomes = await sweeper.runOnce()
      expect(deleted(outcomes, 'auth_states.expired')).toBe(PER_ROUND)
      expect(deleted(outcomes, 'connect_sessions.expired')).toBe(1)
      expect(outcomes.every((o) => o.deleted !== undefined)).toBe(true)
      expect(count(stack, 'auth_states')).toBe(0)
      expect(count(stack, 'connect_sessions')).toBe(0)
    }
  })

  it('stores nothing for floods of made-up links and callbacks', async () => {
    const stack = await startStack()
    stacks.push(stack)
    const random = () => randomBytes(32).toString('base64url')
    await flood(() => `${stack.serviceUrl}/connect/s/${random()}`, 500, 400)
    await flood(() => `${stack.serviceUrl}/callback?state=${random()}&spapi_oauth_code=x`, 500, 400)
    expect(count(stack, 'auth_states')).toBe(0)
    expect(count(stack, 'connect_sessions')).toBe(0)
  })

  it('deletes a used state an hour after its use, and logs counts only', async () => {
    const stack = await startStack()
    stacks.push(stack)
    await connectSeller(stack, new BrowserClient())
    expect(count(stack, 'auth_states')).toBe(1)
    const sweeper = sweeperFor(stack)
    expect(deleted(await sweeper.runOnce(), 'auth_states.consumed')).toBe(0)
    stack.clock.advance(AUTH_STATE_GRACE_MS + 1000)
    // Consumed long ago but not yet expired past the grace: the consumed sweep takes it.
    expect(deleted(await sweeper.runOnce(), 'auth_states.consumed')).toBe(1)
    expect(count(stack, 'auth_states')).toBe(0)
    expect(stack.logger.text()).toContain('"sweep":"auth_states.consumed","deleted":1')
  })
})
