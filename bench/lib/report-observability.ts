/** The observability-cost section of docs/benchmarks.md (see report.ts). */
import type { CostRound, ObservabilityCostResult } from '../scenarios/observability-cost.ts'
import type { BenchResultFile } from './report.ts'

export interface ObservabilitySection {
  readonly rows: string[][]
  readonly text: string
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const pct = (n: number) => `${(n * 100).toLocaleString('en-US', { maximumFractionDigits: 1 })} %`
/** A share of fewer requests as words: negative means more. */
const fewer = (share: number) => (share >= 0 ? `${pct(share)} fewer` : `${pct(-share)} more`)

export function observabilityCostSection(
  file: BenchResultFile<ObservabilityCostResult> | undefined,
  n: string,
): ObservabilitySection {
  if (!file) return { rows: [[n, 'logging + metrics cost', 'not run yet', '', '', '']], text: '' }
  const r = file.result
  const s = r.settings
  const { on, off } = r.modes
  // Rounds run back to back, on then off (or off then on): each pair saw about the same machine, so the
  // pairs' ratios are steadier than the medians when other work shares the CPUs.
  const pairs = on.rounds.flatMap((x, i) => {
    const o = off.rounds[i]
    return o
      ? [
          {
            share: 1 - x.requestsPerSecond / o.requestsPerSecond,
            cpu: x.serverCpuMsPerRequest - o.serverCpuMsPerRequest,
          },
        ]
      : []
  })
  const mid = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b)
    const m = Math.floor(sorted.length / 2)
    return sorted.length % 2 === 1 ? (sorted[m] ?? 0) : ((sorted[m - 1] ?? 0) + (sorted[m] ?? 0)) / 2
  }
  const pairedShare = mid(pairs.map((p) => p.share))
  const pairedCpuMicros = Math.round(mid(pairs.map((p) => p.cpu)) * 1000)
  const ratios = pairs.map((p) => 1 - p.share)
  const shareRange = `on ÷ off per pair ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`
  const noPeer = 'no HTTP service (a library)'
  const rows = [
    [
      n,
      `logging + metrics on the cached token path over HTTP (SQLite, ${s.httpConnections} connections, ${s.durationSeconds} s rounds) → req/s on vs off`,
      `**${fewer(pairedShare)} req/s with them on** (median of ${s.rounds} back-to-back pairs; ${shareRange}; ${pairedCpuMicros >= 0 ? '+' : ''}${pairedCpuMicros} µs server CPU per request); medians ${int(on.medianRps)} req/s on, ${int(off.medianRps)} off`,
      noPeer,
      noPeer,
      noPeer,
    ],
  ]
  const line = (mode: string, x: CostRound) => [
    String(x.round),
    mode,
    int(x.requestsPerSecond),
    `${x.p50Ms} / ${x.p99Ms} ms`,
    `${Math.round(x.serverCpuMsPerRequest * 1000)} µs`,
    String(x.non2xx + x.errors),
  ]
  const table = [
    '| round | logging + metrics | req/s | p50 / p99 | server CPU per request | non-2xx / errors |',
    '| --- | --- | --- | --- | --- | --- |',
    ...on.rounds.flatMap((x, i) => {
      const o = off.rounds[i]
      return [line('on', x), ...(o ? [line('off', o)] : [])].map((cells) => `| ${cells.join(' | ')} |`)
    }),
  ].join('\n')
  const text = `## ${n}. The cost of logging and metrics on the cached token path

\`bench/scenarios/observability-cost.ts\`: two sp-connect HTTP instances in processes of their own, on one SQLite file with
${s.connections} connections that all have a valid stored access token (no token-endpoint call), identical but for
logging and metrics. **on**: the production pino logger at \`info\` (one JSON line per request, and the request id on
every line; stdout discarded) and prom-client metrics; **off**: a silent logger and no metrics. Request ids
(AsyncLocalStorage, the \`x-request-id\` header) run in both. autocannon in the scenario's process, ${s.httpConnections}
keep-alive connections cycling over the connections' \`POST /v1/connections/:id/access-token\`, ${s.warmupSeconds} s
warm-up each, then ${s.rounds} rounds of ${s.durationSeconds} s alternating which goes first. All three processes share the 2 CPUs.

${table}

Each round's two runs are back to back, so each pair saw about the same machine: with logging + metrics on, an instance
answers **${fewer(pairedShare)} requests per second** (median of the pairs; ${shareRange}) and spends
**${pairedCpuMicros} µs more CPU per request** (median of the pairs). Medians of the rounds alone: ${int(on.medianRps)} req/s
on, ${int(off.medianRps)} off (${fewer(r.overheadShare)}).${
    r.micro
      ? `

The pieces timed alone in the scenario's process (median of 3 × 200,000 calls, before the HTTP rounds): one \`request\`
log line through the request-id wrapper into pino with redaction (to /dev/null) **${r.micro.logLineMicros} µs** (the same
call into the silent logger ${r.micro.silentLineMicros} µs); one metric increment **${r.micro.metricMicros} µs**; rendering
the whole \`/metrics\` text ${r.micro.scrapeRenderMs} ms (per scrape, not per request). A cached-token request writes one log
line and makes one or two metric calls.`
      : ''
  }${
    file.cpu && file.cpu.otherShare > 0.2
      ? ` Other work used ${pct(file.cpu.otherShare)} of all CPUs during this run (see the table of runs): the rounds
vary widely, so take the difference as an order of magnitude, not a measurement to the percent.`
      : ''
  }
`
  return { rows, text }
}
