/** The spapi-passthrough section of docs/benchmarks.md (see report.ts). */
import type {
  PassthroughCase,
  PassthroughLoad,
  PassthroughResult,
  PassthroughTargetName,
} from '../scenarios/spapi-passthrough.ts'
import type { BenchResultFile } from './report.ts'

export interface PassthroughSection {
  readonly rows: string[][]
  readonly text: string
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number) => `${n.toLocaleString('en-US', { maximumFractionDigits: 2 })} ms`
const pct = (n: number) => `${(n * 100).toLocaleString('en-US', { maximumFractionDigits: 0 })} %`

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

export function passthroughSection(
  file: BenchResultFile<PassthroughResult> | undefined,
  n: string,
): PassthroughSection {
  if (!file) return { rows: [[n, 'SP-API passthrough', 'not run yet', '', '', '']], text: '' }
  const { cases, ratio, settings: s, profile, simulatorThrottled } = file.result
  const find = (target: PassthroughTargetName, load: PassthroughLoad) =>
    cases.find((c) => c.target === target && c.load === load)
  const brief = (c: PassthroughCase | undefined) =>
    c
      ? `${int(c.median.requestsPerSecond)}/s (p50 ${ms(c.median.latencyMs.p50)}, p99 ${ms(c.median.latencyMs.p99)})`
      : 'not run'
  const amz = find('amazon-sp-api', 'sequential')
  const rows = [
    [
      n,
      `SP-API passthrough (${s.operation.split(' ')[0]}, cached token, simulator on loopback) → calls/s, sequential / ${s.concurrency} concurrent`,
      `**${brief(find('sp-connect', 'sequential'))} / ${brief(find('sp-connect', 'concurrent'))}**; ${pct(ratio.sequential)} / ${pct(ratio.concurrent)} of a bare node:http proxy in the same run`,
      'no HTTP passthrough',
      `same run, in-process over TLS, sequential: ${brief(amz)}`,
      'no HTTP passthrough',
    ],
  ]
  const caseRows = cases.map((c) => [
    c.target,
    c.load === 'sequential' ? '1 (sequential)' : String(c.connections),
    int(c.median.requestsPerSecond),
    ms(c.median.latencyMs.p50),
    ms(c.median.latencyMs.p90),
    ms(c.median.latencyMs.p99),
    c.rounds.map((r) => int(r.requestsPerSecond)).join(', '),
    String(c.rounds.reduce((sum, r) => sum + r.non2xx + r.errors, 0)),
    c.target === 'amazon-sp-api'
      ? '—'
      : `${Math.round((c.median.serverCpuSeconds / Math.max(1, c.median.requests)) * 1e6)} µs`,
    pct(c.median.machineCpuShare),
  ])
  const frames = (list: readonly { frame: string; percent: number }[]) =>
    list.map((f) => `| ${f.percent.toFixed(1)} % | \`${f.frame.replace(/\|/g, '\\|')}\` |`).join('\n')
  const text = `## ${n}. SP-API passthrough

${file.date} · ${file.durationSeconds} s · \`npm run bench -- spapi-passthrough\` · ${s.store}

\`GET /v1/connections/:id/spapi/sellers/v1/marketplaceParticipations\` through one \`sp-connect serve\` process
(production settings: API-key check, log line at \`info\`, the store-backed usage-plan limiter, cached token), beside
a bare \`node:http\` proxy (\`bench/scenarios/bare-spapi-proxy.ts\`: a map lookup for the token, then the same request to
the same simulator, nothing checked), the simulator answered directly, and \`amazon-sp-api\` ${s.amazonSpApi} making the
same calls one after the other in the benchmark's process (HTTPS to the same simulator listener through its
\`https_proxy_agent\` option, given the same access token). ${s.connections} connections, cycled by every side; the simulator
(own process) serves the operation under a raised plan (rate ${int(s.simulatorPlan.rate)}/s), so nothing is throttled:
it served ${simulatorThrottled} 429s in the run. autocannon ${s.autocannon}; ${s.rounds} rounds of ${s.durationSeconds} s per case,
interleaved, after a warm-up; the row shown is the median round; latencies are per response (2xx).
**sp-connect ÷ bare proxy: ${pct(ratio.sequential)} sequential, ${pct(ratio.concurrent)} at ${s.concurrency} connections.** The machine's
busy share (last column) includes other work running on the shared machine at the time.

${table(
  [
    'target',
    'connections',
    'calls/s (median round)',
    'p50',
    'p90',
    'p99',
    'rounds (calls/s)',
    'non-2xx + errors',
    'server CPU per call',
    'machine busy',
  ],
  caseRows,
)}

CPU profile of a second sp-connect process under the ${s.concurrency}-connection load (\`--cpu-prof\`, ${profile.seconds} s at
${int(profile.requestsPerSecond)} calls/s, ${profile.sampledSeconds} s sampled${profile.windowed ? ' during that load' : ', start-up included'}), top frames by self time:

| self | frame |
| --- | --- |
${frames(profile.self.slice(0, 15))}

Self time by file (node_modules by package):

| self | file |
| --- | --- |
${frames(profile.selfByFile.slice(0, 12))}

Inclusive time, src/ and hono:

| inclusive | frame |
| --- | --- |
${frames(profile.inclusiveOurs.slice(0, 15))}
`
  return { rows, text }
}
