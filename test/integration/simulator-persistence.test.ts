import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createSimulator,
  generateDevApp,
  type Simulator,
  type SimulatorServer,
  simulatorUrls,
  startSimulatorServer,
} from '../../src/simulator/index.ts'

const app = generateDevApp({
  redirectUri: 'https://app.example.com/cb',
  loginUri: 'https://app.example.com/login',
})
const creds = { client_id: app.clientId, client_secret: app.clientSecrets[0]?.secret ?? '' }

let dir: string
let stateFile: string
const running: { sim: Simulator; server: SimulatorServer }[] = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sp-sim-'))
  stateFile = join(dir, 'nested', 'simulator-state.json')
})
afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.server.close()
    await r.sim.close()
  }
  rmSync(dir, { recursive: true, force: true })
})

async function start(options: { signingSecret?: string } = {}) {
  const sim = createSimulator({ apps: [app], stateFile, ...options })
  const server = await startSimulatorServer(sim, { port: 0 })
  running.push({ sim, server })
  return { sim, server, urls: simulatorUrls(server.url) }
}

async function stop(sim: Simulator, server: SimulatorServer) {
  const i = running.findIndex((r) => r.sim === sim)
  running.splice(i, 1)
  await server.close()
  await sim.close()
}

async function refresh(tokenUrl: string, rt: string): Promise<number> {
  const res = await fetch(tokenUrl, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, ...creds }),
  })
  return res.status
}

describe('simulator persistence', () => {
  it('keeps accepting its refresh tokens after a restart, with a generated signing secret', async () => {
    const first = await start()
    const rt = first.sim.selfAuthorize(app.appId, 'APERSISTSELLER', 'na')
    expect(await refresh(first.urls.token, rt)).toBe(200)
    await stop(first.sim, first.server)

    expect(statSync(stateFile).mode & 0o777).toBe(0o600)
    const second = await start()
    expect(await refresh(second.urls.token, rt)).toBe(200)
  })

  it('keeps revocations, the clock offset and the counters', async () => {
    const first = await start({ signingSecret: 'fixed-secret-for-test' })
    const kept = first.sim.selfAuthorize(app.appId, 'AKEPTSELLER001', 'eu')
    const revoked = first.sim.selfAuthorize(app.appId, 'AREVOKEDSELL01', 'eu')
    first.sim.revoke('AREVOKEDSELL01')
    first.sim.advanceClock(42 * 24 * 3600_000)
    await refresh(first.urls.token, kept)
    const before = first.sim.counters()
    const offset = first.sim.now() - Date.now()
    await stop(first.sim, first.server)

    const saved = readFileSync(stateFile, 'utf8')
    // The configured secret is not written to disk.
    expect(saved).not.toContain('fixed-secret-for-test')
    const second = await start({ signingSecret: 'fixed-secret-for-test' })
    expect(second.sim.counters()).toEqual(before)
    expect(Math.abs(second.sim.now() - Date.now() - offset)).toBeLessThan(5_000)
    expect(await refresh(second.urls.token, kept)).toBe(200)
    expect(await refresh(second.urls.token, revoked)).toBe(400)
    // New grants after the restart are not covered by the old revocation.
    const fresh = second.sim.selfAuthorize(app.appId, 'AREVOKEDSELL01', 'eu')
    expect(await refresh(second.urls.token, fresh)).toBe(200)
  })

  it('refuses to start from a corrupt state file', async () => {
    const first = await start()
    await stop(first.sim, first.server)
    writeFileSync(stateFile, '{"version":1}')
    expect(() => createSimulator({ apps: [app], stateFile })).toThrow(/state file/)
    writeFileSync(stateFile, '{not json')
    expect(() => createSimulator({ apps: [app], stateFile })).toThrow(/state file/)
  })

  it('works in memory without a state file', async () => {
    const sim = createSimulator({ apps: [app] })
    const server = await startSimulatorServer(sim, { port: 0 })
    running.push({ sim, server })
    const rt = sim.selfAuthorize(app.appId, 'AMEMORYSELLER1', 'fe')
    expect(await refresh(simulatorUrls(server.url).token, rt)).toBe(200)
  })
})
