/**
 * Three unmodified third-party SP-API clients against `sp-connect simulator --tls`: each one gets an LWA
 * token from "api.amazon.com" with a refresh token the simulator issued (self-authorization) and calls
 * "sellingpartnerapi-na.amazon.com". Each runs in a child process with nothing but environment settings:
 * - `@sp-api-sdk/*` (axios tunnels itself) and `amazon-sp-api` (node:https, through Node's NODE_USE_ENV_PROXY)
 *   through HTTPS_PROXY pointing at the simulator, trusting its CA through NODE_EXTRA_CA_CERTS;
 * - Amazon's official SDK, whose superagent ignores every proxy setting, and `amazon-sp-api` again, with their
 *   fixed hosts, in a private network and mount namespace whose /etc/hosts maps Amazon's hosts to 127.0.0.1
 *   (unshare + a bind mount; the machine's /etc/hosts is never touched). That needs root and a working
 *   `unshare`; CI runs as root, so a machine where it cannot work fails this test instead of skipping it.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { simulatedAmazonHosts } from '../../src/simulator/tls.ts'
import {
  httpsCall,
  startTlsSimulatorCli,
  type TlsSimulatorCli,
} from '../helpers/peer-clients/simulator-cli.ts'

const HELPERS = join(import.meta.dirname, '..', 'helpers', 'peer-clients')
const REPO_ROOT = join(import.meta.dirname, '..', '..')
const CLIENT_TIMEOUT_MS = 60_000
/** SP-API operations each client calls after getMarketplaceParticipations. */
const EXTRA_OPERATIONS: readonly string[] = ['getOrders', 'getAccount']

let dir: string
let sim: TlsSimulatorCli

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'peer-clients-'))
  sim = await startTlsSimulatorCli(['--data', join(dir, 'data')])
}, 60_000)
afterAll(async () => {
  await sim?.stop()
  rmSync(dir, { recursive: true, force: true })
})

interface Participation {
  marketplace: { id: string }
  participation: { isParticipating: boolean }
}

/** A refresh token for a new seller, from the control API (what a developer's test setup does). */
async function selfAuthorize(sellingPartnerId: string): Promise<string> {
  const app = sim.info.apps[0]
  const res = await httpsCall(sim.port, sim.caPem, {
    path: '/_control/self-authorize',
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ appId: app?.application_id, sellingPartnerId, region: 'na' }),
  })
  expect(res.status).toBe(200)
  return (JSON.parse(res.body) as { refreshToken: string }).refreshToken
}

/** What the simulator itself answers for `path` on the NA SP-API host with this refresh token's seller. */
async function fromSimulator(refreshToken: string, path: string): Promise<unknown> {
  const app = sim.info.apps[0]
  const token = await httpsCall(sim.port, sim.caPem, {
    host: 'api.amazon.com',
    path: '/auth/o2/token',
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: app?.client_id ?? '',
      client_secret: app?.client_secret ?? '',
    }).toString(),
  })
  const accessToken = (JSON.parse(token.body) as { access_token: string }).access_token
  const res = await httpsCall(sim.port, sim.caPem, {
    host: 'sellingpartnerapi-na.amazon.com',
    path,
    headers: { 'x-amz-access-token': accessToken },
  })
  expect(res.status).toBe(200)
  return (JSON.parse(res.body) as { payload: unknown }).payload
}

function run(command: string, args: readonly string[], env: Record<string, string>) {
  const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c
  })
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), CLIENT_TIMEOUT_MS)
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

function clientEnv(refreshToken: string, extra: Record<string, string>): Record<string, string> {
  const app = sim.info.apps[0]
  return {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '/tmp',
    NODE_EXTRA_CA_CERTS: sim.info.ca_cert_path,
    SIM_CLIENT_ID: app?.client_id ?? '',
    SIM_CLIENT_SECRET: app?.client_secret ?? '',
    SIM_REFRESH_TOKEN: refreshToken,
    SIM_OPERATIONS: EXTRA_OPERATIONS.join(','),
    ...extra,
  }
}

/** Ran to the end without an error; amazon-sp-api warns (stderr) that getAccount is "sandbox only", stale. */
function expectSuccess(out: { code: number | null; stdout: string; stderr: string }) {
  expect(out.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('SANDBOX ONLY!'))).toEqual([])
  expect(out.code).toBe(0)
}

type Json = Record<string, unknown>

/** amazon-sp-api unwraps `payload`; the SDKs return the whole body. */
function payloadOf(value: unknown): Json | Json[] {
  const v = value as Json | Json[]
  return !Array.isArray(v) && 'payload' in v ? (v['payload'] as Json | Json[]) : v
}

function orderIds(payload: Json | Json[]): string[] {
  const p = payload as Json
  const orders = (p['Orders'] ?? p['orders'] ?? []) as Json[]
  return orders.map((o) => String(o['AmazonOrderId'] ?? o['amazonOrderId']))
}

/** The client saw exactly what the simulator serves for the same seller. */
async function expectSameAsSimulator(stdout: string, refreshToken: string) {
  const result = JSON.parse(stdout) as Record<string, unknown>
  const participations = payloadOf(result['getMarketplaceParticipations']) as unknown as Participation[]
  expect(participations.length).toBeGreaterThan(0)
  expect(participations.map((p) => p.marketplace.id)).toEqual(
    ((await fromSimulator(refreshToken, '/sellers/v1/marketplaceParticipations')) as Participation[]).map(
      (p) => p.marketplace.id,
    ),
  )
  if (EXTRA_OPERATIONS.includes('getOrders')) {
    const direct = await fromSimulator(
      refreshToken,
      '/orders/v0/orders?MarketplaceIds=ATVPDKIKX0DER&CreatedAfter=2020-01-01T00%3A00%3A00Z',
    )
    expect(orderIds(payloadOf(result['getOrders']))).toEqual(orderIds(direct as Json))
  }
  if (EXTRA_OPERATIONS.includes('getAccount')) {
    const direct = (await fromSimulator(refreshToken, '/sellers/v1/account')) as Json
    const got = payloadOf(result['getAccount']) as Json
    expect([got['businessType'], got['sellingPlan']]).toEqual([direct['businessType'], direct['sellingPlan']])
  }
}

describe('peer SP-API clients against the simulator, unmodified', () => {
  it('@sp-api-sdk/* (axios) through HTTPS_PROXY', async () => {
    const refreshToken = await selfAuthorize('APEERSPAPISDK')
    const out = await run(process.execPath, [join(HELPERS, 'run-client.mjs'), 'sp-api-sdk'], {
      ...clientEnv(refreshToken, { HTTPS_PROXY: sim.info.https_proxy }),
    })
    expectSuccess(out)
    await expectSameAsSimulator(out.stdout, refreshToken)
  })

  it('amazon-sp-api (node:https) through HTTPS_PROXY with NODE_USE_ENV_PROXY', async () => {
    const refreshToken = await selfAuthorize('APEERAMZPROXY')
    const out = await run(process.execPath, [join(HELPERS, 'run-client.mjs'), 'amazon-sp-api'], {
      ...clientEnv(refreshToken, { HTTPS_PROXY: sim.info.https_proxy, NODE_USE_ENV_PROXY: '1' }),
    })
    expectSuccess(out)
    await expectSameAsSimulator(out.stdout, refreshToken)
  })

  describe('clients pinned to Amazon hosts, in a private namespace with its own /etc/hosts', () => {
    let forward: Server
    let socketPath: string
    let hostsFile: string

    beforeAll(async () => {
      // The namespace has its own loopback; a Unix socket (a file) is the way back out to the simulator.
      socketPath = join(dir, 'simulator.sock')
      forward = createServer((inbound) => {
        const outbound = connect(sim.port, '127.0.0.1')
        inbound.pipe(outbound).pipe(inbound)
        inbound.on('error', () => outbound.destroy())
        outbound.on('error', () => inbound.destroy())
      })
      forward.listen(socketPath)
      await once(forward, 'listening')
      hostsFile = join(dir, 'hosts')
      writeFileSync(
        hostsFile,
        ['127.0.0.1 localhost', ...simulatedAmazonHosts().map((h) => `127.0.0.1 ${h}`), ''].join('\n'),
      )
    })
    afterAll(() => {
      forward?.close()
    })

    it.each([
      // superagent passes `agent: false`, so neither HTTPS_PROXY nor NODE_USE_ENV_PROXY reaches it.
      ["Amazon's official SDK (superagent)", 'official-sdk', 'APEEROFFICIAL'],
      ['amazon-sp-api', 'amazon-sp-api', 'APEERAMZHOSTS'],
    ])('%s obtains a token and calls SP-API', async (_name, client, sellingPartnerId) => {
      expect(process.getuid?.(), 'a private mount and network namespace needs root here').toBe(0)
      const refreshToken = await selfAuthorize(sellingPartnerId)
      // `unshare` makes the new mount namespace's mounts private, so the bind mount is invisible outside.
      const script =
        'PATH="$PATH:/usr/sbin:/sbin" && ip link set lo up && mount --bind "$SIM_HOSTS_FILE" /etc/hosts && exec "$@"'
      const out = await run(
        'unshare',
        [
          '--mount',
          '--net',
          '--',
          'sh',
          '-c',
          script,
          'sh',
          process.execPath,
          join(HELPERS, 'in-namespace.mjs'),
          client,
        ],
        clientEnv(refreshToken, { SIM_HOSTS_FILE: hostsFile, SIM_FORWARD_SOCKET: socketPath }),
      )
      expectSuccess(out)
      await expectSameAsSimulator(out.stdout, refreshToken)
    })
  })
})
