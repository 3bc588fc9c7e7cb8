/**
 * Renders docs/benchmarks.md from the result files in bench/results/, so the document always shows exactly
 * what the JSON says. A scenario without a result file is listed as not run yet.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import type { CachedTokenResult } from '../scenarios/cached-token.ts'
import { SCENARIOS, type ScenarioName } from '../scenarios/index.ts'
import type { LeaseWakeupMode, LeaseWakeupResult } from '../scenarios/lease-wakeup.ts'
import type { LwaErrorsResult, LwaErrorsVariant } from '../scenarios/lwa-errors.ts'
import type { ManyConnectionsResult } from '../scenarios/many-connections.ts'
import type { StampedeResult, StampedeSummary } from '../scenarios/stampede.ts'
import type { MachineInfo } from './machine.ts'
import { PEER_BENCH } from './peers.ts'
import { limiterFidelitySection } from './report-fidelity.ts'
import { limiterCostSection } from './report-limiter.ts'
import { lwaOutageSection } from './report-lwa-outage.ts'
import { observabilityCostSection } from './report-observability.ts'
import { passthroughSection } from './report-passthrough.ts'
import { pgRefreshSection, tokenApiSection } from './report-postgres.ts'

export const RESULTS_DIR = new URL('../results/', import.meta.url)
const DOC = new URL('../../docs/benchmarks.md', import.meta.url)

export interface BenchResultFile<R = unknown> {
  readonly scenario: ScenarioName
  readonly title: string
  /** When the scenario started (ISO 8601, UTC). */
  readonly date: string
  readonly durationSeconds: number
  readonly machine: MachineInfo
  /** The commit measured, and how many files under src/ differed from it (other work in progress). */
  readonly source?: { readonly commit: string; readonly uncommittedSrcFiles: number }
  /**
   * CPU time while the scenario ran: its own (child processes included), and everything else on the machine
   * (other test runs on a shared machine), also as a share of all CPUs over the scenario's wall time.
   */
  readonly cpu?: { readonly benchSeconds: number; readonly otherSeconds: number; readonly otherShare: number }
  readonly result: R
}

function load<R>(name: ScenarioName): BenchResultFile<R> | undefined {
  const url = new URL(`${name}.json`, RESULTS_DIR)
  if (!existsSync(url)) return undefined
  return JSON.parse(readFileSync(url, 'utf8')) as BenchResultFile<R>
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number) => `${n.toLocaleString('en-US', { maximumFractionDigits: 1 })} ms`
const pct = (n: number) => `${(n * 100).toLocaleString('en-US', { maximumFractionDigits: 1 })} %`

function opsPerSec(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M/s`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k/s`
  return `${n.toFixed(0)}/s`
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

function machineLine(m: MachineInfo): string {
  return `${m.nproc} CPUs (\`nproc\`), ${m.cpuModel}, ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.platform}, kernel ${m.kernel}`
}

function cachedSection(file: BenchResultFile<CachedTokenResult> | undefined): {
  row: string[]
  text: string
} {
  if (!file) return { row: ['1', 'cached token, sequential', 'not run yet', '', '', ''], text: '' }
  const { ours, bizon, settings } = file.result
  const row = [
    '1',
    'cached token, ops/s (sequential, 1 connection / 1 client)',
    `**${opsPerSec(ours.medianOpsPerSec)}** (${ours.medianNsPerOp} ns/op)`,
    `same run: ${opsPerSec(bizon.medianOpsPerSec)} (${bizon.medianNsPerOp} ns/op); PEER-BENCH: ${PEER_BENCH.peers[1].cachedToken}`,
    PEER_BENCH.peers[0].cachedToken,
    PEER_BENCH.peers[2].cachedToken,
  ]
  const rounds = table(
    ['round', 'sp-connect ops/s', 'ns/op', `@sp-api-sdk/auth ${bizon.version} ops/s`, 'ns/op'],
    ours.rounds.map((r, i) => {
      const b = bizon.rounds[i]
      return [
        String(i + 1),
        int(r.opsPerSec),
        String(r.nsPerOp),
        b ? int(b.opsPerSec) : '',
        b ? String(b.nsPerOp) : '',
      ]
    }),
  )
  const text = `## 1. Cached token lookup

${file.date} · ${file.durationSeconds} s · \`npm run bench -- cached-token\`

What each side measures, per call: **sp-connect** \`await tokens.getAccessToken(id)\` on a warm cache: the usage
bookkeeping check (at most one store write per connection every 5 minutes), the in-memory cache lookup, the
expiry check against the refresh margin, and a status re-check against the store every
${ours.statusRecheckMs / 1000} s (so a disconnect made by another process takes effect within seconds);
${int(ours.storeReadsWhileTimed)} store read(s) fell inside the ${int(ours.timedCalls)} timed calls.
**@sp-api-sdk/auth** \`await auth.getAccessToken()\`: a field read and one expiry comparison. Both fetched their
one token from the simulator first (ours over loopback HTTP; bizon through nock, which intercepts its fixed
\`https://api.amazon.com/auth/o2/token\` and forwards the request to the simulator's in-process app):
${ours.tokenEndpointCalls} and ${bizon.tokenEndpointCalls} token-endpoint call(s).

Method: ${settings.warmupMs} ms warm-up per side, then ${settings.rounds} timed rounds of ${settings.roundMs} ms per
side, alternating sp-connect / bizon so drift on the shared machine hits both alike; calls in batches of
${int(settings.batch)}; the figure is the median round.

${rounds}
`
  return { row, text }
}

function stampedeRows(s: StampedeSummary): string[][] {
  return s.rounds.map((r, i) => [
    String(i + 1),
    `${r.processes} × ${int(r.callers / r.processes)}`,
    String(r.tokenEndpointCalls),
    String(r.failed),
    String(r.distinctTokens),
    ms(r.p50Ms),
    ms(r.p99Ms),
    ms(r.slowestMs),
    r.slowestPerProcessMs.map((v) => v.toFixed(0)).join(' / '),
  ])
}

function stampedeSection(file: BenchResultFile<StampedeResult> | undefined): {
  rows: string[][]
  text: string
} {
  if (!file) return { rows: [['2', 'stampede', 'not run yet', '', '', '']], text: '' }
  const { multiProcess: m, singleProcess: s, settings } = file.result
  const rows = [
    [
      '2',
      `${int(settings.callersPerProcess)} concurrent first token calls, 1 process, token endpoint ${settings.tokenLatencyMs} ms → token-endpoint calls; slowest caller`,
      `**${s.maxTokenEndpointCalls}** in every round (${s.totalFailed} failed); slowest ${ms(s.medianSlowestMs)} (median of ${s.rounds.length} rounds; worst ${ms(s.worstSlowestMs)})`,
      PEER_BENCH.peers[1].concurrentFirstToken,
      PEER_BENCH.peers[0].concurrentFirstToken,
      PEER_BENCH.peers[2].concurrentFirstToken,
    ],
    [
      '2',
      `${settings.processes} processes × ${int(settings.callersPerProcess)} concurrent callers, one expired connection, one SQLite file → token-endpoint calls; p50 / slowest`,
      `**${m.maxTokenEndpointCalls}** in every round (${m.totalFailed} failed); p50 ${ms(m.medianP50Ms)}, slowest ${ms(m.medianSlowestMs)} (medians of ${m.rounds.length} rounds; worst ${ms(m.worstSlowestMs)})`,
      'not measured (in-process cache only: 1 call per process)',
      'not measured',
      'not measured',
    ],
  ]
  const header = [
    'round',
    'processes × callers',
    'token-endpoint calls',
    'failed',
    'distinct tokens',
    'p50',
    'p99',
    'slowest',
    'slowest per process (ms)',
  ]
  const text = `## 2. Stampede on one expired connection

${file.date} · ${file.durationSeconds} s · \`npm run bench -- stampede\`

${settings.processes} real processes (\`child_process.fork\` of \`bench/scenarios/stampede-worker.ts\`), each with its own
runtime on one shared SQLite file; the simulator is a real HTTP server on 127.0.0.1 in a process of its own, its
token endpoint answering after ${settings.tokenLatencyMs} ms. Each round takes a new connection whose access token expired a minute ago;
at an agreed instant every process starts ${int(settings.callersPerProcess)} concurrent \`getAccessToken\` calls. Token-endpoint calls are
the simulator's counters; a caller's wait runs from the agreed instant to its answer. An untimed warm-up round
precedes each shape. Within a process the callers share one promise (single-flight); across processes one takes
the connection's lease in the store and refreshes, and the others poll the row (first poll after 25–75 ms, pauses
doubling up to 500 ms, ± 50 % jitter) until the new token is there, which is why the other processes' callers wait several
times the endpoint's latency.

${settings.processes} processes:

${table(header, stampedeRows(m))}

1 process (the shape of the peers' row 2):

${table(header, stampedeRows(s))}
`
  return { rows, text }
}

function lwaVariantRows(v: LwaErrorsVariant): string[][] {
  return v.runs.map((r) => [
    v.setup.label,
    String(r.seed),
    `${r.ok}/${r.refreshes}`,
    Object.entries(r.failures)
      .map(([code, n]) => `${n} ${code}`)
      .join(', ') || '—',
    String(r.tokenEndpointCalls),
    String(r.injectedFaults),
    r.callsPerSuccessfulRefresh.toFixed(2),
    `${r.wallSeconds} s`,
    `${ms(r.p50Ms)} / ${ms(r.slowestMs)}`,
    String(r.retryBudgetLeft),
    r.breakerState,
  ])
}

function breakerSummary(runs: readonly { breakerState: string }[]): string {
  const counts = new Map<string, number>()
  for (const r of runs) counts.set(r.breakerState, (counts.get(r.breakerState) ?? 0) + 1)
  return [...counts].map(([state, n]) => `${state} ${n} of ${runs.length}`).join(', ')
}

function lwaVariantLine(v: LwaErrorsVariant): string {
  const a = v.all
  return `- **${v.setup.label}** (${v.maxAttempts} attempts${v.setup.budgetRatio === undefined ? '' : `, budget ratio ${v.setup.budgetRatio}`}; seeds ${v.setup.seeds.join(', ')}): ${a.ok}/${a.refreshes} ok (${pct(a.okShare)}), ${a.callsPerSuccessfulRefresh.toFixed(2)} calls per success, ${a.wallSeconds} s in all. Were every retry allowed: ${pct(v.expectedOkShareWithoutBudget)} ok and ${v.expectedCallsPerRefreshWithoutBudget} calls per refresh expected.`
}

function lwaSection(file: BenchResultFile<LwaErrorsResult> | undefined): { rows: string[][]; text: string } {
  const d = file?.result.variants[0]
  if (!file || !d) return { rows: [['3', 'token endpoint 30 % 5xx', 'not run yet', '', '', '']], text: '' }
  const { variants, settings } = file.result
  const peer = PEER_BENCH.peers
  const h = d.headline
  const rows = [
    [
      '3',
      `${pct(settings.errorRate)} of token-endpoint calls fail (5xx); ${settings.refreshesPerSeed} sequential first refreshes → ok / token-endpoint calls`,
      `**${h.ok}/${h.refreshes}** ok, ${h.tokenEndpointCalls} calls (${h.callsPerSuccessfulRefresh.toFixed(2)} per success; seed ${h.seed}, as configured); ${d.runs.length} seeds: ${d.all.ok}/${d.all.refreshes} (${pct(d.all.okShare)}), ${d.all.callsPerSuccessfulRefresh.toFixed(2)} calls per success`,
      peer[1].lwaErrors,
      peer[0].lwaErrors,
      peer[2].lwaErrors,
    ],
  ]
  const header = [
    'LWA client',
    'seed',
    'ok',
    'failed with',
    'token-endpoint calls',
    'injected 5xx',
    'calls per success',
    'wall',
    'p50 / slowest refresh',
    'retry budget left',
    'breaker after',
  ]
  const policy = settings.defaultRetryPolicy
  const text = `## 3. Token endpoint failing 30 % of calls

${file.date} · ${file.durationSeconds} s · \`npm run bench -- lwa-errors\`

The simulator (own process, HTTP on 127.0.0.1, seeded PRNG) answers ${pct(settings.errorRate)} of token-endpoint calls with a 5xx: half
\`500 server_error\`, half \`503 temporarily_unavailable\` (both are retried alike). ${settings.refreshesPerSeed} refreshes one after the
other, each the first refresh of its own connection, which has no access token stored: nothing stale can stand in
for a failed refresh, like the peers' "fresh client each". Real sleeps between retries (full-jitter backoff, base
${policy.baseDelayMs} ms, cap ${policy.maxDelayMs} ms), so the wall time includes them. The first seed of each variant is its headline.

Two limits decide how many refreshes survive: the attempts per call (default ${policy.maxAttempts}) and the LWA client's shared
retry budget (\`src/core/lwa/retry-budget.ts\`: each request earns a fraction of a retry, plus a small steady allowance, so a
failing LWA is not hammered by retries). \`openRuntime\` offers neither as a setting (\`buildRuntime\` makes the LWA client
with defaults), so the what-ifs wire \`LwaClient\` and \`TokenManager\` the way \`buildRuntime\` does, with the changes named.

${variants.map(lwaVariantLine).join('\n')}

${d.all.okShare < 1 ? '**As configured, 100 % is not reached.** ' : ''}A refresh that fails after its retries returns a typed error to its caller
(\`lwa_server_error\` / \`lwa_temporarily_unavailable\`). "Retry budget left"
below 1 means the budget was refusing retries at the end of the run. Circuit breaker (opens after 5 consecutive failed
refreshes) after each run: ${breakerSummary(variants.flatMap((v) => v.runs))}.

${table(header, variants.flatMap(lwaVariantRows))}
`
  return { rows, text }
}

/** Says so when the achieved pace is far below every rate limit and about the same for all of them. */
function paceNote(runs: ManyConnectionsResult['refresher']): string {
  if (runs.length < 2) return ''
  const paces = runs.map((r) => r.callsPerSecond)
  const farBelow = runs.every((r) => r.callsPerSecond < r.ratePerSecond / 2)
  const similar = Math.max(...paces) <= 1.25 * Math.min(...paces)
  return farBelow && similar
    ? 'The pace hardly changes with the rate limit and stays far below it: something other than the limit bounds the refresher here.\n\n'
    : ''
}

function manySection(file: BenchResultFile<ManyConnectionsResult> | undefined): {
  rows: string[][]
  text: string
} {
  if (!file) return { rows: [['4', '10,000 connections', 'not run yet', '', '', '']], text: '' }
  const { refresher, memory } = file.result
  const peer = PEER_BENCH.peers
  const rows = [
    [
      '4',
      `${int(memory.connections)} connections: heap per connection after forced GC`,
      `**${(memory.bytesPerConnection / 1000).toFixed(2)} KB** per connection in the warm token cache (Δ heap ${(memory.heapDeltaBytes / 2 ** 20).toFixed(1)} MiB)`,
      peer[1].memory,
      peer[0].memory,
      peer[2].memory,
    ],
    ...refresher.map((r) => [
      '4',
      `${int(r.connections)} expired connections, background refresher at ${int(r.ratePerSecond)}/s, concurrency ${r.concurrency} → wall, calls`,
      r.finishedInTime
        ? `**${r.wallSeconds} s**, ${int(r.callsPerSecond)} calls/s, ${int(r.tokenEndpointCalls)} calls, ${int(r.freshAfter)}/${int(r.connections)} fresh`
        : `**not done within the ${r.timeLimitSeconds} s bound**: ${int(r.freshAfter)}/${int(r.connections)} fresh, ${int(r.callsPerSecond)} calls/s, ${int(r.tokenEndpointCalls)} calls (all would take ≈ ${int(r.connections / r.callsPerSecond)} s at that pace)`,
      'no background refresh',
      'no background refresh',
      'no background refresh',
    ]),
  ]
  const text = `## 4. 10,000 connections

${file.date} · ${file.durationSeconds} s · \`npm run bench -- many-connections\`

Connections are inserted straight into the store (refresh tokens from the simulator's self-authorization, sealed
with \`sealToken\`), all used a minute ago and all with an access token that expired a minute ago, as after
downtime. The \`BackgroundRefresher\` (as \`serve\` builds it, with the rate limit and concurrency below) runs rounds
back to back until none is due; each rate starts from a fresh database. The simulator runs in its own process.
"Calls" are the simulator's counters; "fresh" counts connections whose token is afterwards valid beyond the refresh
margin plus the refresher's lookahead. Calls/s is calls over the wall time.

${table(
  [
    'rate limit',
    'concurrency',
    'wall',
    'calls/s',
    'token-endpoint calls',
    'rounds',
    'refreshed',
    'failed',
    'fresh after',
    'insert time',
  ],
  refresher.map((r) => [
    `${int(r.ratePerSecond)}/s`,
    String(r.concurrency),
    r.finishedInTime ? `${r.wallSeconds} s` : `> ${r.timeLimitSeconds} s (bound reached)`,
    int(r.callsPerSecond),
    int(r.tokenEndpointCalls),
    String(r.rounds),
    int(r.refreshed),
    String(r.failed),
    `${int(r.freshAfter)}/${int(r.connections)}`,
    `${r.insertSeconds} s`,
  ]),
)}

${paceNote(refresher)}${
  memory.topUpCalls > 0
    ? `Before the memory measurement, what the last run left stale was refreshed on demand (${int(memory.topUpCalls)} token-endpoint calls).\n\n`
    : ''
}Warm-cache memory: a fresh process (\`bench/scenarios/warm-cache-worker.ts\`, \`--expose-gc\`) opens a runtime on the
refreshed database and calls \`getAccessToken\` once for each of the ${int(memory.connections)} connections (served from the store:
read, decrypt, cache; ${memory.tokenEndpointCallsDuringFill} token-endpoint calls), taking ${memory.fillSeconds} s. Heap after forced GC grew by
${int(memory.heapDeltaBytes)} bytes: **${int(memory.bytesPerConnection)} bytes per connection** (the cached access token of ~300
characters, its expiry and check time, and the usage timestamp). RSS ${memory.rssBeforeMiB} → ${memory.rssAfterMiB} MiB. The peers'
figure is per client object holding one token, measured the same way (Δ heap after forced GC).
`
  return { rows, text }
}

function wakeupModeRow(m: LeaseWakeupMode): string[] {
  const byMethod = Object.entries(m.waiterStatementsByMethod)
    .filter(([method]) => method !== 'waitForConnectionChange')
    .map(([method, n]) => `${method} ${n}`)
    .join(', ')
  return [
    m.mode === 'notify' ? 'LISTEN/NOTIFY (default)' : 'polling only (`notify: false`)',
    String(m.rounds.length),
    int(m.samples) + (m.excludedProcesses > 0 ? ` (${m.excludedProcesses} processes left out)` : ''),
    `${m.maxTokenEndpointCalls} max`,
    String(m.failed),
    ms(m.extraWait.p50Ms),
    ms(m.extraWait.p99Ms),
    ms(m.extraWait.maxMs),
    ms(m.extraWait.meanMs),
    `${m.waitsPerProcessRound} (${pct(m.wokenShare)} woken early)`,
    `${m.statementsPerRound.holder} / ${m.statementsPerRound.waiters}`,
    byMethod,
    `${m.waiterStatementsPerWaitingSecond}/s over ${ms(m.medianProcessWaitMs)}`,
  ]
}

function leaseWakeupSection(
  file: BenchResultFile<LeaseWakeupResult> | undefined,
  n: string,
): { rows: string[][]; text: string } {
  if (!file) return { rows: [[n, 'lease wake-up on PostgreSQL', 'not run yet', '', '', '']], text: '' }
  const { notify, poll, settings } = file.result
  const waits = (m: LeaseWakeupMode) =>
    `p50 ${ms(m.extraWait.p50Ms)}, p99 ${ms(m.extraWait.p99Ms)}, max ${ms(m.extraWait.maxMs)}`
  const rows = [
    [
      n,
      `PostgreSQL: ${settings.waiterProcesses} processes × ${int(settings.callersPerProcess)} callers wait for another process's refresh (token endpoint ${settings.tokenLatencyMs} ms) → extra wait after the new token is written; statements per round`,
      `LISTEN/NOTIFY **${waits(notify)}**; polling ${waits(poll)}; ${notify.statementsPerRound.holder + notify.statementsPerRound.waiters} vs ${poll.statementsPerRound.holder + poll.statementsPerRound.waiters} statements per round`,
      'not applicable (no cross-process coordination)',
      'not applicable',
      'not applicable',
    ],
  ]
  const perRound = table(
    ['round', 'notify p50', 'notify max', 'notify write', 'poll p50', 'poll max', 'poll write'],
    notify.rounds.map((r, i) => {
      const p = poll.rounds[i]
      return [
        String(i + 1),
        ms(r.p50Ms),
        ms(r.maxMs),
        ms(r.writeMs),
        p ? ms(p.p50Ms) : '',
        p ? ms(p.maxMs) : '',
        p ? ms(p.writeMs) : '',
      ]
    }),
  )
  const text = `## ${n}. Lease wake-up on PostgreSQL: LISTEN/NOTIFY vs polling

${file.date} · ${file.durationSeconds} s · \`npm run bench -- lease-wakeup\` · PostgreSQL ${settings.postgresVersion}

A database of its own (C collation, dropped afterwards), the simulator in its own process (token endpoint ${settings.tokenLatencyMs} ms), and
${settings.waiterProcesses + 1} sp-connect processes (\`bench/scenarios/lease-wakeup-worker.ts\`, runtimes built as \`openRuntime\` does, the store
opened with or without \`notify\`). Each round takes a new connection whose access token expired: one process asks for it,
takes the lease and calls the token endpoint; the moment it holds the lease, the other ${settings.waiterProcesses} start ${int(settings.callersPerProcess)} concurrent
callers each, which find the lease taken and wait (\`waitForConnectionChange\`, timeout = the poll pause: ${settings.pollMinMs} ms doubling to
${settings.pollMaxMs} ms, ± 50 % jitter). **Extra wait** = a caller's answer time − the moment the holder's \`updateTokens\` returned (the
commit, and the NOTIFY with it, happen just before, so a notified caller can answer a little *before* that moment:
negative values; "write" below is how long that statement took, the uncertainty of the reference). Processes that had not yet
started waiting when the holder wrote are left out. ${settings.roundsPerMode} rounds per mode, in ${settings.blocksPerMode} alternating blocks per mode on freshly
opened runtimes, each block after an untimed warm-up round. The ${int(settings.callersPerProcess)} callers of a process share one
single-flight wait, so their answers come together: the percentiles describe ${settings.waiterProcesses} × ${settings.roundsPerMode} waits per mode.

Statements: every store call of every process, counted in the processes (one call is one statement; the NOTIFY is part
of the writing statement, not one more). Listening costs, per instance, one more PostgreSQL connection outside the pool and
a heartbeat \`select 1\` every ${settings.listenHeartbeatSeconds} s (${(1 / settings.listenHeartbeatSeconds).toFixed(3)} statements/s) whether or not anything waits. "Per second while
waiting" is the waiters' statements over their waiting time (start to last answer): the same statements in a shorter
wait show as a higher rate, not as more work.

${table(
  [
    'mode',
    'rounds',
    'callers measured',
    'token-endpoint calls per round',
    'failed',
    'p50',
    'p99',
    'max',
    'mean',
    'waits per process per round',
    'statements per round (holder / waiters)',
    'waiters’ statements per round',
    'per second while waiting (median wait)',
  ],
  [wakeupModeRow(notify), wakeupModeRow(poll)],
)}

Per round (extra wait of the ${settings.waiterProcesses * settings.callersPerProcess} callers; round *i* of each mode side by side, not run at the same time):

${perRound}

The decision drawn from these figures: docs/decisions/0008-lease-wakeup.md.
`
  return { rows, text }
}

/** Writes docs/benchmarks.md from the result files present. */
export function writeReport(): void {
  const files = (Object.keys(SCENARIOS) as ScenarioName[]).map((name) => load(name))
  const machines = new Map<string, string[]>()
  for (const f of files) {
    if (!f) continue
    const line = machineLine(f.machine)
    machines.set(line, [...(machines.get(line) ?? []), f.scenario])
  }
  const cached = cachedSection(load<CachedTokenResult>('cached-token'))
  const stampede = stampedeSection(load<StampedeResult>('stampede'))
  const lwa = lwaSection(load<LwaErrorsResult>('lwa-errors'))
  const many = manySection(load<ManyConnectionsResult>('many-connections'))
  const wakeup = leaseWakeupSection(
    load<LeaseWakeupResult>('lease-wakeup'),
    String((Object.keys(SCENARIOS) as ScenarioName[]).indexOf('lease-wakeup') + 1),
  )
  const pgRefresh = pgRefreshSection(
    load('pg-refresh'),
    String((Object.keys(SCENARIOS) as ScenarioName[]).indexOf('pg-refresh') + 1),
  )
  const tokenApi = tokenApiSection(
    load('token-api'),
    String((Object.keys(SCENARIOS) as ScenarioName[]).indexOf('token-api') + 1),
  )
  const observability = observabilityCostSection(
    load('observability-cost'),
    String((Object.keys(SCENARIOS) as ScenarioName[]).indexOf('observability-cost') + 1),
  )
  const outage = lwaOutageSection(
    load('lwa-outage'),
    String((Object.keys(SCENARIOS) as ScenarioName[]).indexOf('lwa-outage') + 1),
  )
  const limiterCost = limiterCostSection(
    load('limiter-cost'),
    String((Object.keys(SCENARIOS) as ScenarioName[]).indexOf('limiter-cost') + 1),
  )
  const limiterFidelity = limiterFidelitySection(
    load('limiter-fidelity'),
    String((Object.keys(SCENARIOS) as ScenarioName[]).indexOf('limiter-fidelity') + 1),
  )
  const passthrough = passthroughSection(
    load('spapi-passthrough'),
    String((Object.keys(SCENARIOS) as ScenarioName[]).indexOf('spapi-passthrough') + 1),
  )
  const runs = table(
    [
      'benchmark',
      'started (UTC)',
      'commit measured',
      'took',
      'CPU used by the benchmark',
      'CPU used by other work on the machine',
    ],
    (Object.keys(SCENARIOS) as ScenarioName[]).map((name, i) => {
      const f = files[i]
      if (!f) return [`\`${name}\``, 'not run yet', '', '', '', '']
      const changed = f.source?.uncommittedSrcFiles
        ? ` + ${f.source.uncommittedSrcFiles} changed src/ files`
        : ''
      return [
        `\`${name}\``,
        f.date,
        f.source ? `\`${f.source.commit}\`${changed}` : '',
        `${f.durationSeconds} s`,
        f.cpu ? `${f.cpu.benchSeconds} s` : '',
        f.cpu ? `${f.cpu.otherSeconds} s (${pct(f.cpu.otherShare)} of all CPUs)` : '',
      ]
    }),
  )
  const machineText =
    machines.size === 0
      ? 'No results yet.'
      : [...machines]
          .map(([line, names]) => `- ${line}${machines.size > 1 ? ` (${names.join(', ')})` : ''}`)
          .join('\n')
  const peer = PEER_BENCH.peers
  const doc = `# Benchmarks

<!-- Rendered by bench/run.ts from bench/results/*.json; edit bench/lib/report.ts, not this file. -->

\`npm run bench\` runs every benchmark below (${Math.round(files.reduce((sum, f) => sum + (f?.durationSeconds ?? 0), 0) / 60)} minutes on 2 cores, going by the durations below; each is stopped after 180 s);
\`npm run bench -- <name>\` (or \`./node_modules/.bin/node bench/run.ts <name>…\`) runs some. Each runs in a fresh Node
process, bounded in time and count, against the Amazon simulator on 127.0.0.1 only, with real SQLite files in temp
folders, or PostgreSQL databases created for the run on \`SP_CONNECT_BENCH_DATABASE_URL\` (default
\`postgres://postgres@127.0.0.1:5432/postgres\`), that are removed afterwards, as are the child processes.
Results: \`bench/results/<name>.json\`; this page is rendered from them. Nothing here is asserted in tests: timings on a shared 2-core machine move by ±20–50 % between runs (more when other
work runs at the same time: see the CPU used by other work below), while the counts (token-endpoint calls, failures, fresh
connections) are exact.

## Machine

${machineText}

${runs}

Peer figures are from the peers' benchmark (\`shared/PEER-BENCH.md\`), measured ${PEER_BENCH.measured} on the same kind of machine
(${PEER_BENCH.machine}) with Node ${PEER_BENCH.node}, against a fake LWA in a separate process over TLS on loopback. Only
@sp-api-sdk/auth's cached-token figure was measured again here, in the same run as ours.

## Summary: sp-connect beside the peers

${table(
  ['#', 'measure', 'sp-connect', peer[1].name, peer[0].name, peer[2].name],
  [
    cached.row,
    ...stampede.rows,
    ...lwa.rows,
    ...many.rows,
    ...wakeup.rows,
    ...pgRefresh.rows,
    ...tokenApi.rows,
    ...observability.rows,
    ...outage.rows,
    ...limiterCost.rows,
    ...limiterFidelity.rows,
    ...passthrough.rows,
  ],
)}

${cached.text}
${stampede.text}
${lwa.text}
${many.text}
${wakeup.text}
${pgRefresh.text}
${tokenApi.text}
${observability.text}
${outage.text}
${limiterCost.text}
${limiterFidelity.text}
${passthrough.text}
## Reading notes

- The cached-token row compares like with like only for @sp-api-sdk/auth (same process, same run, same Node). Both
  sides do an \`await\`; sp-connect also does the usage-bookkeeping check and reads the clock three times per call
  (usage, status re-check, expiry), which is most of the gap on this machine, where a clock read costs ~50–70 ns.
  amazon-sp-api's figure is a plain property read without an expiry check.
- Stampede: the peers have no cross-process coordination at all; with N processes each peer would make at least N calls
  (@sp-api-sdk/auth one per process, the others one per caller).
- 30 % 5xx: no peer retries a 5xx from LWA, so every injected failure reached their callers (68/100). sp-connect
  retries within a bounded budget; the fault patterns are seeded but not the same PRNG as the peers'.
- 10,000 connections: the configuration caps \`SP_CONNECT_REFRESH_RATE_PER_SECOND\` at 1,000 per instance (default 5,
  concurrency default 4); the benchmark builds the refresher directly to try 2,000/s.
`
  writeFileSync(DOC, doc)
}
