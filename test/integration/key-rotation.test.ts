/**
 * Key rotation against a real deployment (`startStack()`: simulator, service, SQLite file): re-encryption under
 * a new primary key, interrupted and resumed (by an abort signal, SIGTERM and SIGKILL of a real `keys rotate`
 * process), racing forced refreshes, rows under a key that is gone failing closed as `key_unavailable`, and
 * the dev-folder flow that adds the new key to config.json.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { resolveConfig } from '../../src/cli/context.ts'
import { addDevPrimaryKey, loadOrCreateDevData } from '../../src/cli/dev-data.ts'
import { loadConfigFromEnv } from '../../src/config.ts'
import { ciphertextKeyId, Keyring } from '../../src/core/crypto/keyring.ts'
import { appSecretContext, reencryptAll, scanKeyUsage } from '../../src/core/crypto/reencrypt.ts'
import { defaultDeps } from '../../src/core/deps.ts'
import { TokenManager } from '../../src/core/tokens/manager.ts'
import { openToken, sealToken } from '../../src/core/tokens/sealed.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'
import { openRuntime, type Runtime } from '../../src/runtime.ts'
import { openStore } from '../../src/store/open.ts'
import type { ConnectionCiphertexts, Store } from '../../src/store/store.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { runCli as runCliHelper, spawnCli } from '../helpers/cli.ts'
import { connectSeller } from '../helpers/flows.ts'
import { MemoryLogger, type Stack, startStack } from '../helpers/stack.ts'

const CLI_TIMEOUT_MS = 60_000
const PROGRESS_LINE = /re-encrypting: (\d+)\/(\d+) rows/g

interface TestKey {
  readonly id: string
  readonly key: string
}

function newKey(id: string): TestKey {
  return { id, key: randomBytes(32).toString('base64') }
}

function spec(...keys: readonly TestKey[]): string {
  return keys.map((k) => `${k.id}:${k.key}`).join(',')
}

/** The stack's own key (k1), from its environment. */
function stackKey(stack: Stack): TestKey {
  const [id, key] = (stack.env['SP_CONNECT_ENCRYPTION_KEYS'] ?? '').split(':')
  return { id: id ?? '', key: key ?? '' }
}

/** A second sp-connect process's runtime on the same database, with another keyring. */
function openSecondRuntime(stack: Stack, ...keys: readonly TestKey[]): Promise<Runtime> {
  const config = loadConfigFromEnv({ ...stack.env, SP_CONNECT_ENCRYPTION_KEYS: spec(...keys) })
  return openRuntime(config, defaultDeps({ now: stack.clock.now, logger: new MemoryLogger() }))
}

async function allCiphertexts(store: Store): Promise<ConnectionCiphertexts[]> {
  const rows: ConnectionCiphertexts[] = []
  let after: string | undefined
  for (;;) {
    const batch = await store.listConnectionCiphertexts(after, 1000)
    if (batch.length === 0) return rows
    rows.push(...batch)
    after = batch[batch.length - 1]?.id
  }
}

/** Key ids of every stored connection ciphertext, as `id -> [refresh key id, access key id]`. */
async function keyIdsByRow(store: Store): Promise<Map<string, (string | null)[]>> {
  const map = new Map<string, (string | null)[]>()
  for (const row of await allCiphertexts(store)) {
    map.set(
      row.id,
      [row.refreshTokenCiphertext, row.accessTokenCiphertext].map((c) =>
        c === null ? null : ciphertextKeyId(c),
      ),
    )
  }
  return map
}

/** Decrypts every stored token with `keyring` (throws on any failure); returns id -> [refresh, access]. */
async function decryptAll(store: Store, keyring: Keyring): Promise<Map<string, (string | null)[]>> {
  const map = new Map<string, (string | null)[]>()
  for (const row of await allCiphertexts(store)) {
    map.set(row.id, [
      row.refreshTokenCiphertext === null
        ? null
        : openToken(keyring, row.id, 'refresh_token', row.refreshTokenCiphertext),
      row.accessTokenCiphertext === null
        ? null
        : openToken(keyring, row.id, 'access_token', row.accessTokenCiphertext),
    ])
  }
  return map
}

async function connectSellers(stack: Stack, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) ids.push((await connectSeller(stack, new BrowserClient())).connectionId)
  return ids
}

/** Stores `count` connections straight through the store, their fake tokens sealed under `keyring`'s primary. */
async function insertConnections(store: Store, keyring: Keyring, count: number, now: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const id = `con_bulk${String(i).padStart(5, '0')}${randomBytes(6).toString('hex')}`
    await store.insertConnection({
      id,
      sellingPartnerId: `ABULK${String(i).padStart(9, '0')}`,
      region: 'na',
      accountType: 'seller',
      tenantId: null,
      refreshTokenCiphertext: sealToken(keyring, id, 'refresh_token', `Atzr|bulk-refresh-${i}`),
      accessTokenCiphertext: sealToken(keyring, id, 'access_token', `Atza|bulk-access-${i}`),
      accessTokenExpiresAt: now + 60 * 60 * 1000,
      authorizedAt: now,
      reauthorizeBy: now + 365 * 24 * 60 * 60 * 1000,
      now,
    })
  }
}

/** A store that runs `before` ahead of the first call of `method` (to force an interleaving), then delegates. */
function interposed(store: Store, method: keyof Store, before: () => Promise<void>): Store {
  let done = false
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (property !== method) return value.bind(target)
      return async (...args: unknown[]) => {
        if (!done) {
          done = true
          await before()
        }
        return value.apply(target, args)
      }
    },
  })
}

const children = new Set<ChildProcessWithoutNullStreams>()

/** Runs the CLI with exactly `env` (plus PATH/HOME) and waits for it to exit. */
function runCli(args: readonly string[], env: Record<string, string>) {
  return runCliHelper(args, { env, timeoutMs: CLI_TIMEOUT_MS })
}

/** Sends `signal` to the CLI once it has reported `minDone` rows done (so it is mid-way), and waits for it. */
async function interruptAfterProgress(
  args: readonly string[],
  env: Record<string, string>,
  signal: NodeJS.Signals,
  minDone: number,
) {
  const child = spawnCli(args, { env, input: '', timeoutMs: CLI_TIMEOUT_MS })
  children.add(child)
  let sent = false
  let stderr = ''
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk
    const reached = [...stderr.matchAll(PROGRESS_LINE)].some((m) => Number(m[1]) >= minDone)
    if (!sent && reached) {
      sent = true
      child.kill(signal)
    }
  })
  const [chunks, [code, exitSignal]] = await Promise.all([
    child.stdout.toArray() as Promise<string[]>,
    once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>,
  ])
  children.delete(child)
  return { code, signal: exitSignal, sent, stdout: chunks.join(''), stderr }
}

afterAll(() => {
  for (const child of children) child.kill('SIGKILL')
})

describe('key rotation', () => {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  const stackForTest = async () => {
    const stack = await startStack()
    cleanups.push(() => stack.close())
    return stack
  }
  const secondRuntime = async (stack: Stack, ...keys: TestKey[]) => {
    const runtime = await openSecondRuntime(stack, ...keys)
    cleanups.push(() => runtime.close())
    return runtime
  }

  it('re-encrypts every row and app secret under the new primary; tokens keep working on the new ring', async () => {
    const stack = await stackForTest()
    const k1 = stackKey(stack)
    const ids = await connectSellers(stack, 4)
    const disconnected = (await connectSellers(stack, 1))[0] ?? ''
    expect((await stack.api('DELETE', `/v1/connections/${disconnected}`)).status).toBe(200)
    const clientId = stack.env['SP_CONNECT_LWA_CLIENT_ID'] ?? ''
    await stack.runtime.store.insertAppSecret({
      id: 'sec_1',
      clientId,
      secretCiphertext: stack.runtime.keyring.encrypt('the-rotated-secret', appSecretContext('sec_1')),
      state: 'active',
      createdAt: stack.clock.now(),
      expiresAt: null,
    })
    const before = await decryptAll(stack.runtime.store, stack.runtime.keyring)

    const rotated = await secondRuntime(stack, newKey('k2'), k1)
    const progress: [number, number | undefined][] = []
    const result = await reencryptAll({
      store: rotated.store,
      keyring: rotated.keyring,
      appSecretClientIds: [clientId],
      batchSize: 2,
      onProgress: (done, total) => progress.push([done, total]),
    })
    expect(result).toEqual({
      scanned: 6,
      reencrypted: 5,
      skipped: 1,
      conflicts: 0,
      unavailable: 0,
      failed: 0,
      unfinished: 0,
      completed: true,
      unavailableKeyIds: [],
    })
    expect(progress.map(([done]) => done)).toEqual([2, 4, 5, 6])

    // Same plaintexts, now only under k2: a ring without k1 reads everything.
    const k2Only = new Keyring([{ id: 'k2', key: keyBytes(rotated) }])
    expect(await decryptAll(rotated.store, k2Only)).toEqual(before)
    for (const [id, keyIds] of await keyIdsByRow(rotated.store)) {
      expect(keyIds).toEqual(id === disconnected ? [null, null] : ['k2', 'k2'])
    }
    const [secret] = await rotated.store.listAppSecrets(clientId)
    expect(ciphertextKeyId(secret?.secretCiphertext ?? '')).toBe('k2')
    expect(k2Only.decrypt(secret?.secretCiphertext ?? '', appSecretContext('sec_1'))).toBe(
      'the-rotated-secret',
    )

    // The new ring serves the stored token, refreshes, and calls SP-API.
    for (const id of ids) {
      const cached = await rotated.tokens.getAccessToken(id)
      expect(cached.accessToken).toBe(before.get(id)?.[1])
      const refreshed = await rotated.tokens.getAccessToken(id, { forceRefresh: true })
      expect(refreshed.accessToken).not.toBe(cached.accessToken)
      const call = await rotated.spapi.call(id, {
        method: 'GET',
        path: '/sellers/v1/marketplaceParticipations',
      })
      expect(call.status).toBe(200)
    }

    const usage = await scanKeyUsage({
      store: rotated.store,
      keyring: rotated.keyring,
      appSecretClientIds: [clientId],
    })
    expect(usage).toMatchObject({
      rows: 6,
      connectionsWithoutTokens: 1,
      pending: 0,
      unavailable: 0,
      malformed: 0,
    })
    expect(usage.keys).toEqual([
      { id: 'k2', configured: true, primary: true, connections: 4, appSecrets: 1 },
      { id: 'k1', configured: true, primary: false, connections: 0, appSecrets: 0 },
    ])

    // Idempotent: a second run finds nothing to do and decrypts nothing.
    const again = await reencryptAll({
      store: rotated.store,
      keyring: rotated.keyring,
      appSecretClientIds: [clientId],
    })
    expect(again).toMatchObject({ scanned: 6, reencrypted: 0, skipped: 6, completed: true })
  })

  it('key rotation interrupted and resumed: every row stays readable, and a rerun finishes the job', async () => {
    const stack = await stackForTest()
    const k1 = stackKey(stack)
    const ids = await connectSellers(stack, 5)
    const before = await decryptAll(stack.runtime.store, stack.runtime.keyring)
    const rotated = await secondRuntime(stack, newKey('k2'), k1)

    const controller = new AbortController()
    const first = await reencryptAll({
      store: rotated.store,
      keyring: rotated.keyring,
      batchSize: 2,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    })
    expect(first).toMatchObject({ scanned: 2, reencrypted: 2, completed: false })
    const midway = [...(await keyIdsByRow(rotated.store)).values()]
    expect(midway.filter((k) => k[0] === 'k2' && k[1] === 'k2')).toHaveLength(2)
    expect(midway.filter((k) => k[0] === 'k1' && k[1] === 'k1')).toHaveLength(3)
    // Half-way, the ring [k2, k1] reads every row, and hands out every token.
    expect(await decryptAll(rotated.store, rotated.keyring)).toEqual(before)
    for (const id of ids)
      expect((await rotated.tokens.getAccessToken(id)).accessToken).toBe(before.get(id)?.[1])

    const rest = await reencryptAll({ store: rotated.store, keyring: rotated.keyring, batchSize: 2 })
    expect(rest).toMatchObject({ scanned: 5, reencrypted: 3, skipped: 2, completed: true })
    expect([...(await keyIdsByRow(rotated.store)).values()]).toEqual(ids.map(() => ['k2', 'k2']))
    expect(await decryptAll(rotated.store, rotated.keyring)).toEqual(before)
  })

  it('a row under a key that is not configured fails closed as key_unavailable, never as revoked', async () => {
    const stack = await stackForTest()
    const k1 = stackKey(stack)
    const [onK2, onK1] = await connectSellers(stack, 2)
    const k2 = newKey('k2')
    const rotated = await secondRuntime(stack, k2, k1)
    // Re-encrypt only the first connection under k2 (batch of one, then stop).
    const controller = new AbortController()
    await reencryptAll({
      store: rotated.store,
      keyring: rotated.keyring,
      batchSize: 1,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    })
    const rows = await keyIdsByRow(stack.runtime.store)
    const underK2 = [...rows].find(([, keyIds]) => keyIds[0] === 'k2')?.[0]
    const underK1 = [...rows].find(([, keyIds]) => keyIds[0] === 'k1')?.[0]
    expect(new Set([underK2, underK1])).toEqual(new Set([onK2, onK1]))

    // The service still runs with [k1] only: the row under k2 is unreadable to it.
    const eventsBefore = await stack.api('GET', `/v1/connections/${underK2}/events`)
    const answer = await stack.api('POST', `/v1/connections/${underK2}/access-token`)
    expect(answer.status).toBe(500)
    expect((answer.json['error'] as { code: string }).code).toBe('key_unavailable')
    const forced = await stack.runtime.tokens.getAccessToken(underK2 ?? '', { forceRefresh: true }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isSpConnectError(forced, 'key_unavailable')).toBe(true)
    const row = await stack.runtime.store.getConnection(underK2 ?? '')
    expect(row).toMatchObject({ status: 'active', statusReason: null, failureCount: 0, leaseOwner: null })
    // No failure recorded: the only new event is the alert naming the missing key id, once for both requests.
    await stack.runtime.integrityAlerts.settled()
    const eventsAfter = await stack.api('GET', `/v1/connections/${underK2}/events`)
    type Listed = { id: string; type: string; data: Record<string, unknown> }
    const seen = new Set((eventsBefore.json['data'] as Listed[]).map((e) => e.id))
    const added = (eventsAfter.json['data'] as Listed[]).filter((e) => !seen.has(e.id))
    expect(added.map((e) => [e.type, e.data['keyId']])).toEqual([['app.key_unavailable', 'k2']])
    // …while the row under k1 works as before.
    expect((await stack.api('POST', `/v1/connections/${underK1}/access-token`)).status).toBe(200)

    // A ring that lost k1 (removed too early): rows under k1 are counted and left exactly as they are.
    const lost = await secondRuntime(stack, newKey('k3'), k2)
    const ciphertextsBefore = await allCiphertexts(lost.store)
    const result = await reencryptAll({ store: lost.store, keyring: lost.keyring })
    expect(result).toMatchObject({ scanned: 2, reencrypted: 1, unavailable: 1, unavailableKeyIds: ['k1'] })
    const after = await allCiphertexts(lost.store)
    expect(after.find((r) => r.id === underK1)).toEqual(ciphertextsBefore.find((r) => r.id === underK1))
    const usage = await scanKeyUsage({ store: lost.store, keyring: lost.keyring })
    expect(usage).toMatchObject({ pending: 0, unavailable: 1 })
    expect(usage.keys.find((k) => k.id === 'k1')).toEqual({
      id: 'k1',
      configured: false,
      primary: false,
      connections: 1,
      appSecrets: 0,
    })
    const refused = await lost.tokens.getAccessToken(underK1 ?? '').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isSpConnectError(refused, 'key_unavailable')).toBe(true)
    expect(await lost.store.getConnection(underK1 ?? '')).toMatchObject({ status: 'active', failureCount: 0 })
  })

  it('a refresh that writes first makes the row be re-read and redone (conflict), with the refreshed token kept', async () => {
    const stack = await stackForTest()
    const [id] = await connectSellers(stack, 1)
    const rotated = await secondRuntime(stack, newKey('k2'), stackKey(stack))
    let refreshed = ''
    const store = interposed(rotated.store, 'replaceConnectionCiphertexts', async () => {
      refreshed = (await rotated.tokens.getAccessToken(id ?? '', { forceRefresh: true })).accessToken
    })
    const result = await reencryptAll({ store, keyring: rotated.keyring })
    expect(result).toMatchObject({ scanned: 1, reencrypted: 1, conflicts: 1, unfinished: 0 })
    expect([...(await keyIdsByRow(rotated.store)).values()]).toEqual([['k2', 'k2']])
    expect((await decryptAll(rotated.store, rotated.keyring)).get(id ?? '')?.[1]).toBe(refreshed)
  })

  it('a refresh that read the row before the re-encryption still lands its write (no version bump)', async () => {
    const stack = await stackForTest()
    const [id] = await connectSellers(stack, 1)
    const rotated = await secondRuntime(stack, newKey('k2'), stackKey(stack))
    const before = await stack.runtime.store.getConnection(id ?? '')
    let during: Awaited<ReturnType<typeof reencryptAll>> | undefined
    // The refresh has read the row and called LWA; the re-encryption runs right before its fenced write.
    const store = interposed(rotated.store, 'updateTokens', async () => {
      during = await reencryptAll({ store: rotated.store, keyring: rotated.keyring })
    })
    const tokens = new TokenManager(
      { store, keyring: rotated.keyring, lwa: rotated.lwa, events: rotated.events },
      rotated.deps,
    )
    const token = await tokens.getAccessToken(id ?? '', { forceRefresh: true })
    expect(during).toMatchObject({ reencrypted: 1, conflicts: 0 })
    const after = await stack.runtime.store.getConnection(id ?? '')
    expect(after?.version).toBe((before?.version ?? 0) + 1)
    expect(after?.lastRefreshError).toBeNull()
    expect([...(await keyIdsByRow(rotated.store)).values()]).toEqual([['k2', 'k2']])
    expect((await decryptAll(rotated.store, rotated.keyring)).get(id ?? '')?.[1]).toBe(token.accessToken)
  })

  it('runs safely alongside 20 forced refreshes of the same connections', async () => {
    const stack = await stackForTest()
    const ids = await connectSellers(stack, 5)
    const rotated = await secondRuntime(stack, newKey('k2'), stackKey(stack))
    const latest = new Map<string, string>()
    const refreshes = (async () => {
      for (let round = 0; round < 4; round++) {
        await Promise.all(
          ids.map(async (id) => {
            latest.set(id, (await rotated.tokens.getAccessToken(id, { forceRefresh: true })).accessToken)
          }),
        )
      }
    })()
    const [result] = await Promise.all([
      reencryptAll({ store: rotated.store, keyring: rotated.keyring, batchSize: 1 }),
      refreshes,
    ])
    expect(result).toMatchObject({ scanned: 5, unavailable: 0, failed: 0, unfinished: 0, completed: true })
    expect(result.reencrypted + result.skipped).toBe(5)

    const k2Only = new Keyring([{ id: 'k2', key: keyBytes(rotated) }])
    const stored = await decryptAll(rotated.store, k2Only)
    for (const id of ids) {
      expect(stored.get(id)?.[1]).toBe(latest.get(id))
      expect(await rotated.store.getConnection(id)).toMatchObject({ status: 'active', failureCount: 0 })
      const call = await rotated.spapi.call(id, {
        method: 'GET',
        path: '/sellers/v1/marketplaceParticipations',
      })
      expect(call.status).toBe(200)
    }
  })

  it('`keys rotate` (DATABASE_URL): stops on SIGTERM, survives SIGKILL mid-way, and a rerun completes', async () => {
    const stack = await stackForTest()
    const k1 = stackKey(stack)
    await insertConnections(stack.runtime.store, stack.runtime.keyring, 2000, stack.clock.now())
    const before = await decryptAll(stack.runtime.store, stack.runtime.keyring)
    const k2 = newKey('k2')
    const env = { ...stack.env, SP_CONNECT_ENCRYPTION_KEYS: spec(k2, k1) }
    const ring = new Keyring(
      [k2, k1].map(({ id, key }) => ({ id, key: new Uint8Array(Buffer.from(key, 'base64')) })),
    )
    const counts = async () => {
      const keyIds = [...(await keyIdsByRow(stack.runtime.store)).values()]
      return {
        k2: keyIds.filter((k) => k[0] === 'k2' && k[1] === 'k2').length,
        k1: keyIds.filter((k) => k[0] === 'k1' && k[1] === 'k1').length,
      }
    }

    const termed = await interruptAfterProgress(['keys', 'rotate', '--batch', '20'], env, 'SIGTERM', 1)
    expect(termed.sent).toBe(true)
    expect(termed.code).toBe(143)
    expect(termed.stdout).toMatch(/Stopped after \d+ row\(s\)/)
    const afterTerm = await counts()
    expect(afterTerm.k2 + afterTerm.k1).toBe(2000)
    expect(afterTerm.k2).toBeGreaterThan(0)
    expect(afterTerm.k1).toBeGreaterThan(0)
    expect(await decryptAll(stack.runtime.store, ring)).toEqual(before)

    // Killed once it reports 10% (the first rows it finds were done by the run above).
    const killed = await interruptAfterProgress(['keys', 'rotate', '--batch', '20'], env, 'SIGKILL', 200)
    expect(killed.sent).toBe(true)
    expect(killed.signal).toBe('SIGKILL')
    const afterKill = await counts()
    expect(afterKill.k2 + afterKill.k1).toBe(2000)
    expect(afterKill.k2).toBeGreaterThanOrEqual(200)
    expect(afterKill.k1).toBeGreaterThan(0)
    // Every row is whole (both columns under one key) and readable, wherever the kill landed.
    expect(await decryptAll(stack.runtime.store, ring)).toEqual(before)

    const status = await runCli(['keys', 'status', '--json'], env)
    expect(status.code).toBe(0)
    const json = JSON.parse(status.stdout) as { pending: number; keys: { id: string; connections: number }[] }
    expect(json.pending).toBe(afterKill.k1)
    expect(json.keys.map((k) => [k.id, k.connections])).toEqual([
      ['k2', afterKill.k2],
      ['k1', afterKill.k1],
    ])

    const rerun = await runCli(['keys', 'rotate'], env)
    expect(rerun.stderr).not.toMatch(/error/)
    expect(rerun.code).toBe(0)
    expect(rerun.stdout).toContain(
      `Re-encrypted ${afterKill.k1} row(s) under "k2"; ${afterKill.k2} already under it`,
    )
    expect(await counts()).toEqual({ k2: 2000, k1: 0 })
    const k2Only = new Keyring([{ id: 'k2', key: new Uint8Array(Buffer.from(k2.key, 'base64')) }])
    expect(await decryptAll(stack.runtime.store, k2Only)).toEqual(before)

    // Nothing left: a rotation without a new primary key is refused, with what to do instead.
    const refused = await runCli(['keys', 'rotate'], env)
    expect(refused.code).toBe(78)
    expect(refused.stderr).toContain(
      'Nothing to rotate: every readable row is already under the primary key "k2"',
    )
    expect(refused.stderr).toContain('SP_CONNECT_ENCRYPTION_KEYS')
    for (const text of [
      termed.stdout,
      termed.stderr,
      killed.stderr,
      status.stdout,
      rerun.stdout,
      rerun.stderr,
    ]) {
      expect(text).not.toContain(k2.key)
      expect(text).not.toContain('bulk-refresh')
    }
  })

  it('`keys rotate --data DIR` adds a new primary key to config.json, keeps the old one, and re-encrypts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-connect-keys-'))
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
    const env = {}
    // A folder from before rotation existed: one `encryptionKey`.
    const data = loadOrCreateDevData(dir)
    const oldKey = data.encryptionKeys[0]
    const file = join(dir, 'config.json')
    const { encryptionKeys: _, ...rest } = data
    writeFileSync(file, `${JSON.stringify({ ...rest, encryptionKey: oldKey }, null, 2)}\n`, { mode: 0o600 })
    const runtime = await openRuntime(resolveConfig({ data: dir }), defaultDeps())
    await insertConnections(runtime.store, runtime.keyring, 30, Date.now())
    const before = await decryptAll(runtime.store, runtime.keyring)
    await runtime.close()

    const rotated = await runCli(['keys', 'rotate', '--data', dir, '--batch', '7'], env)
    expect(rotated.stderr).not.toMatch(/error/)
    expect(rotated.code).toBe(0)
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    const keys = config['encryptionKeys'] as { id: string; key: string }[]
    expect(keys).toHaveLength(2)
    expect(keys[0]?.id).toMatch(/^k-\d{8}-[0-9a-f]{8}$/)
    expect(keys[1]).toEqual(oldKey)
    expect(config['encryptionKey']).toBeUndefined()
    expect(config['apiKey']).toBe(data.apiKey)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(rotated.stdout).toContain(`Added key "${keys[0]?.id}"`)
    expect(rotated.stdout).toContain(`Re-encrypted 30 row(s) under "${keys[0]?.id}"`)

    const store = await openStore(resolveConfig({ data: dir }).database)
    cleanups.push(() => store.close())
    const newOnly = new Keyring([
      { id: keys[0]?.id ?? '', key: new Uint8Array(Buffer.from(keys[0]?.key ?? '', 'base64')) },
    ])
    expect(await decryptAll(store, newOnly)).toEqual(before)

    const status = await runCli(['keys', 'status', '--data', dir, '--json'], env)
    expect(status.code).toBe(0)
    expect((JSON.parse(status.stdout) as { keys: unknown }).keys).toEqual([
      { id: keys[0]?.id, configured: true, primary: true, connections: 30, app_secrets: 0 },
      { id: oldKey?.id, configured: true, primary: false, connections: 0, app_secrets: 0 },
    ])
    const text = await runCli(['keys', 'status', '--data', dir], env)
    expect(text.stdout).toContain(`No row is under "${oldKey?.id}": it may be removed from the keyring`)

    // Killed right after writing config.json (before re-encrypting anything): a rerun finishes that rotation
    // instead of adding yet another key.
    const third = { id: 'k-third', key: randomBytes(32).toString('base64') }
    addDevPrimaryKey(dir, third)
    const resumed = await runCli(['keys', 'rotate', '--data', dir], env)
    expect(resumed.code).toBe(0)
    expect(resumed.stdout).toContain(
      'Finishing the previous rotation: 30 row(s) are not yet under the primary key "k-third"',
    )
    expect(resumed.stdout).toContain('Re-encrypted 30 row(s) under "k-third"')
    const afterResume = JSON.parse(readFileSync(file, 'utf8')) as { encryptionKeys: { id: string }[] }
    expect(afterResume.encryptionKeys.map((k) => k.id)).toEqual(['k-third', keys[0]?.id, oldKey?.id])
    const thirdOnly = new Keyring([{ id: third.id, key: new Uint8Array(Buffer.from(third.key, 'base64')) }])
    expect(await decryptAll(store, thirdOnly)).toEqual(before)

    // While `sp-connect dev` runs on the folder (dev.json names a live pid), rotating is refused.
    writeFileSync(
      join(dir, 'dev.json'),
      JSON.stringify({ publicUrl: 'http://localhost:3000', pid: process.pid }),
    )
    const refused = await runCli(['keys', 'rotate', '--data', dir], env)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('stop it first')
    expect(
      (JSON.parse(readFileSync(file, 'utf8')) as { encryptionKeys: unknown[] }).encryptionKeys,
    ).toHaveLength(3)
  })

  it('`keys generate` prints a new id:base64key for SP_CONNECT_ENCRYPTION_KEYS', async () => {
    const first = await runCli(['keys', 'generate'], {})
    const second = await runCli(['keys', 'generate'], {})
    expect(first.code).toBe(0)
    const line = /^(k-\d{8}-[0-9a-f]{8}):([A-Za-z0-9+/]{43}=)\n$/
    expect(first.stdout).toMatch(line)
    expect(second.stdout).not.toBe(first.stdout)
    const [, id, key] = line.exec(first.stdout) ?? []
    expect(Buffer.from(key ?? '', 'base64')).toHaveLength(32)
    expect(
      new Keyring([{ id: id ?? '', key: new Uint8Array(Buffer.from(key ?? '', 'base64')) }]).primaryKeyId,
    ).toBe(id)
  })
})

/** k2's key bytes from the rotated runtime's configuration. */
function keyBytes(runtime: Runtime): Uint8Array {
  const key = runtime.config.keyring.find((k) => k.id === 'k2')
  if (!key) throw new Error('k2 is not in the ring')
  return key.key
}
