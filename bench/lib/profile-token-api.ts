/**
 * A quick look at the token API's cost per request, outside `npm run bench`: the setup of
 * bench/scenarios/token-api.ts (simulator, PostgreSQL database, 300 connections, one `sp-connect serve`), then
 * autocannon against the bare `node:http` server and the instance in turn, and, with `--cpu-prof`, the
 * instance's CPU profile summarised by self time. Nothing is written to bench/results.
 *
 *   ./node_modules/.bin/node bench/lib/profile-token-api.ts [--cpu-prof] [--keep=file.cpuprofile] [--seconds=10] [--rounds=2]
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import type { BareServerReply, BareServerRequest } from '../scenarios/bare-http-server.ts'
import { ForkedWorker } from './forked-worker.ts'
import {
  benchEnv,
  newEncryptionKey,
  openBenchRuntime,
  sellingPartnerId,
  tempDir,
  withCleanup,
} from './harness.ts'
import { bulkInsertConnections, createBenchDatabase } from './postgres.ts'
import { RemoteSimulator } from './remote-simulator.ts'
import { processCpuSeconds, startServe } from './serve-process.ts'

const BARE_SERVER = fileURLToPath(new URL('../scenarios/bare-http-server.ts', import.meta.url))
const CONNECTIONS = 300
const HTTP_CONNECTIONS = 48

const flag = (name: string) => process.argv.includes(`--${name}`)
const option = (name: string, fallback: number) => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`))
  return found ? Number(found.slice(name.length + 3)) : fallback
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: { functionName: string; url: string; lineNumber: number }
  readonly children?: number[]
}
interface CpuProfile {
  readonly nodes: ProfileNode[]
  readonly samples: number[]
  readonly timeDeltas: number[]
}

/** The top frames by self time, and by inclusive time for frames from src/ (where our code spends it). */
function summarise(profile: CpuProfile, top = 40): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const selfUs = new Map<number, number>()
  for (const [i, id] of profile.samples.entries())
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const label = (n: ProfileNode) => {
    const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|src)\//, '$1/')
    return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (!node) continue
    self.set(label(node), (self.get(label(node)) ?? 0) + us)
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at)
      if (!n) break
      const l = label(n)
      if (seen.has(l)) continue
      seen.add(l)
      inclusive.set(l, (inclusive.get(l) ?? 0) + us)
    }
  }
  const print = (title: string, map: Map<string, number>, filter: (l: string) => boolean) => {
    console.log(`\n${title} (of ${(total / 1e6).toFixed(2)} s sampled)`)
    for (const [l, us] of [...map]
      .filter(([l]) => filter(l))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top))
      console.log(`${((us / total) * 100).toFixed(1).padStart(5)} %  ${l}`)
  }
  print('Self time', self, () => true)
  print('Inclusive time, src/ and hono', inclusive, (l) => / (src|node_modules\/(hono|@hono))\//.test(l))
}

await withCleanup(async (defer) => {
  const seconds = option('seconds', 10)
  const rounds = option('rounds', 2)
  const profileDir = flag('cpu-prof') ? tempDir('profile') : undefined
  if (profileDir) defer(() => profileDir.dispose())
  const sim = await RemoteSimulator.start()
  defer(() => sim.close())
  const database = await createBenchDatabase()
  defer(() => database.drop())
  const base = benchEnv(sim.target, database.url, newEncryptionKey())
  const apiKey = (base['SP_CONNECT_API_KEYS'] ?? '').split(':')[1] ?? ''
  const env = { ...base, SP_CONNECT_REFRESHER: 'on', SP_CONNECT_LOG_LEVEL: 'info' }
  const runtime = await openBenchRuntime(env)
  defer(() => runtime.close())
  const spids = Array.from({ length: CONNECTIONS }, (_, i) => sellingPartnerId(i + 1))
  const refreshTokens = await sim.selfAuthorize(spids)
  const ids = await bulkInsertConnections(
    runtime,
    database.url,
    spids.map((sp, i) => ({ sellingPartnerId: sp, refreshToken: refreshTokens[i] ?? '' })),
  )
  const instance = await startServe(
    env,
    profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir.path}`, '--cpu-prof-interval=200'] : [],
  )
  let stopped = false
  defer(() => (stopped ? undefined : instance.stop()))
  const headers = { authorization: `Bearer ${apiKey}` }
  let sample = ''
  for (const id of ids) {
    const response = await fetch(`${instance.url}/v1/connections/${id}/access-token`, {
      method: 'POST',
      headers,
    })
    sample = await response.text()
    if (response.status !== 200)
      throw new Error(`warm-up answered ${response.status}: ${sample.slice(0, 200)}`)
  }
  const bare = new ForkedWorker<BareServerRequest, BareServerReply>(BARE_SERVER)
  defer(() => bare.close({ op: 'close' }))
  const ready = await bare.request({ op: 'start', body: sample }, 15_000)
  if (ready.type !== 'ready') throw new Error('bare server did not start')
  const requests = ids.map((id) => ({ method: 'POST' as const, path: `/v1/connections/${id}/access-token` }))
  const fire = (url: string, duration: number) =>
    autocannon({
      url,
      connections: HTTP_CONNECTIONS,
      pipelining: 1,
      duration,
      method: 'POST',
      headers,
      requests,
    })
  await fire(ready.url, 2)
  await fire(instance.url, 2)
  for (let r = 1; r <= rounds; r++) {
    for (const [name, url, pid] of [
      ['bare', ready.url, bare.pid],
      ['sp-connect', instance.url, instance.pid],
    ] as const) {
      const cpu = processCpuSeconds(pid)
      const result = await fire(url, seconds)
      const rps = Math.round(result.requests.total / result.duration)
      const cpuMsPerRequest = ((processCpuSeconds(pid) - cpu) * 1000) / result.requests.total
      console.log(
        `round ${r} ${name.padEnd(10)} ${String(rps).padStart(6)} req/s  p50 ${result.latency.p50} ms  p99 ${result.latency.p99} ms  ` +
          `non2xx ${result.non2xx}  server CPU ${(cpuMsPerRequest * 1000).toFixed(0)} µs/request`,
      )
    }
  }
  await instance.stop()
  stopped = true
  if (profileDir) {
    const file = readdirSync(profileDir.path).find((f) => f.endsWith('.cpuprofile'))
    if (!file) throw new Error('no profile written')
    const text = readFileSync(join(profileDir.path, file), 'utf8')
    const keep = process.argv.find((a) => a.startsWith('--keep='))?.slice('--keep='.length)
    if (keep) writeFileSync(keep, text)
    summarise(JSON.parse(text) as CpuProfile)
  }
})
process.exit()
