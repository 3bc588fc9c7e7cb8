/**
 * The docs/benchmarks.md sections of the PostgreSQL cluster benchmarks (pg-refresh.ts, token-api.ts): summary
 * rows and a section each, rendered from their result files by report.ts.
 */
import type { PgRefreshResult, PgRefreshRun, SizeReading } from '../scenarios/pg-refresh.ts'
import type { TokenApiResult, TokenApiRound, TokenApiTarget } from '../scenarios/token-api.ts'
import type { BenchResultFile } from './report.ts'

interface Section {
  readonly rows: string[][]
  readonly text: string
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const pct = (n: number) => `${Math.round(n * 100)} %`
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** "963 s (16 min)". */
function duration(seconds: number): string {
  return seconds >= 120 ? `${int(seconds)} s (${Math.round(seconds / 60)} min)` : `${int(seconds)} s`
}

/** "4,362–4,687" for the values of several rounds, or one value when they agree. */
function span(values: readonly number[], format: (n: number) => string = int): string {
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  return lo === hi ? format(lo) : `${format(lo)}–${format(hi)}`
}

// ---------------------------------------------------------------------------------------------------------
// pg-refresh

function refreshRow(r: PgRefreshRun): string[] {
  return [
    r.variant,
    String(r.instances),
    `${int(r.ratePerInstance)}/s (cluster ${int(r.clusterRateLimit)}/s)`,
    `${r.wallSeconds} s`,
    int(r.tokenEndpointCalls),
    `**${int(r.callsPerSecond)}**`,
    int(r.connectionsRefreshed),
    String(r.duplicates),
    String(r.failed),
    `${r.claims}: ${r.claimMsMean} / ${r.claimMsMax} ms`,
    r.cpuSecondsPerInstance.map((s) => s.toFixed(1)).join(' + '),
    pct(r.machineCpuShare),
    `**${duration(r.extrapolatedSecondsForAll)}**`,
  ]
}

function sizeRow(label: string, s: SizeReading): string[] {
  return [
    label,
    int(s.rows),
    mib(s.totalBytes),
    mib(s.tableBytes),
    mib(s.indexBytes),
    `**${int(s.bytesPerConnection)} B**`,
    `${int(s.indexBytesPerConnection)} B`,
    `${int(s.avgRowBytes)} B`,
  ]
}

/** Summary cell for one setting: the 1- and 3-instance runs side by side. */
function refreshCell(runs: readonly PgRefreshRun[]): string {
  const parts = runs.map(
    (r) =>
      `${r.instances} instance${r.instances === 1 ? '' : 's'}: **${int(r.callsPerSecond)} calls/s, ≈ ${duration(r.extrapolatedSecondsForAll)}**`,
  )
  const dups = runs.reduce((s, r) => s + r.duplicates, 0)
  const calls = runs.reduce((s, r) => s + r.tokenEndpointCalls, 0)
  return `${parts.join('; ')} (extrapolated from ${runs.map((r) => `${r.wallSeconds} s`).join(' / ')} windows; ${dups} duplicates in ${int(calls)} calls)`
}

function planText(result: PgRefreshResult): string {
  const plan = result.claimPlan
  if ('error' in plan) return `(The claim's plan could not be read: ${plan.error}.)`
  const seq = plan.seqScanRows > 0
  const spill = plan.nodes.some((n) => /external|Disk/.test(n))
  return `With all ${int(result.settings.connections)} due, PostgreSQL answers one claim (\`EXPLAIN ANALYZE\`, rolled back) in ${int(plan.executionMs)} ms
as ${plan.nodes.map((n) => `\`${n}\``).join(' → ')}.${
    seq
      ? ` It reads every due row (${int(plan.seqScanRows)}) and sorts them${spill ? ' (on disk)' : ''} to hand out 100: the cost of a claim grows
with the number of connections due, not with the batch, so it is highest right after downtime and falls as the backlog
shrinks (which makes the extrapolation above an upper estimate).`
      : ''
  }`
}

export function pgRefreshSection(file: BenchResultFile<PgRefreshResult> | undefined, n: string): Section {
  if (!file) return { rows: [[n, '100,000 connections on PostgreSQL', 'not run yet', '', '', '']], text: '' }
  const r = file.result
  const s = r.settings
  const none = 'no background refresh'
  const variants = [...new Set(r.runs.map((x) => x.variant))]
  const first = s.variants[0]
  const rows = [
    ...variants.map((label) => {
      const runs = r.runs.filter((x) => x.variant === label)
      const v = s.variants.find((x) => x.label === label)
      const setting = v?.clusterRatePerSecond
        ? `a fixed cluster rate of ${int(v.clusterRatePerSecond)}/s (split among the instances)`
        : `${int(v?.ratePerInstance ?? 0)}/s per instance (the configuration's cap)`
      return [
        n,
        `${int(s.connections)} due connections on PostgreSQL, background refresher at ${setting}, 1 / 3 instances → calls/s, time for all`,
        refreshCell(runs),
        none,
        none,
        none,
      ]
    }),
    [
      n,
      `PostgreSQL: database size per connection (\`pg_total_relation_size('connections')\` / rows)`,
      `**${int(r.size.afterInsert.bytesPerConnection)} B** (indexes ${int(r.size.afterInsert.indexBytesPerConnection)} B); ${int(r.size.afterRuns.bytesPerConnection)} B with the dead row versions of a refresh run; ${int(r.size.afterVacuumFull.bytesPerConnection)} B after \`VACUUM FULL\``,
      'no store (tokens in memory)',
      'no store (tokens in memory)',
      'no store (tokens in memory)',
    ],
  ]
  const text = `## ${n}. 100,000 connections on PostgreSQL: the refresher with 1 and 3 instances

${file.date} · ${file.durationSeconds} s · \`npm run bench -- pg-refresh\` · PostgreSQL ${r.server.version} (fsync ${r.server.fsync}, synchronous_commit ${r.server.synchronousCommit}, shared_buffers ${r.server.sharedBuffers})

A database of its own (\`sp_connect_bench_<random>\`, C collation, dropped afterwards), migrated by the store. ${int(s.connections)} connections
inserted with multi-row INSERTs of ${int(s.insertBatch)} rows through Kysely on the store's schema in ${r.prepare.insertSeconds} s (${int(r.prepare.rowsPerSecond)} rows/s, sealing
included; the simulator issued their refresh tokens in ${r.prepare.selfAuthorizeSeconds} s), each with a sealed refresh token (${r.prepare.refreshTokenChars} characters) and a
sealed access token of a real token's length (${r.prepare.accessTokenChars} characters) that expired a minute ago, and used a minute ago: all
${int(s.connections)} are due, as after downtime. Each instance is a child process (\`bench/scenarios/pg-refresh-worker.ts\`) with its
own runtime (pool of ${s.poolSizePerInstance}), TokenManager and \`BackgroundRefresher\` built as \`serve\` builds it (concurrency ${s.concurrencyPerInstance} per instance),
all on the one database; the simulator runs in a process of its own.

Method: refreshing ${int(s.connections)} takes ${int(s.connections)} / rate seconds, many minutes at any rate this machine sustains, so
each run is a **measured window of ${s.windowSeconds} s**: the instances start together and are then stopped as \`stop()\` stops them
(refreshes in flight finish; claimed connections not yet started are released). Before each run, whatever the previous
run refreshed is made due again and the table vacuumed, so every run starts with all ${int(s.connections)} due. **The time for all
${int(s.connections)} is extrapolated** from the run's pace: ${int(s.connections)} / (calls / wall). Calls are the simulator's counters;
"refreshed" counts the rows whose \`last_refresh_at\` the run set; duplicates = calls − refreshed (target 0). Two settings,
each with 1 and 3 instances: **${first?.label ?? ''}**: the token endpoint's rate for the whole cluster is fixed (what Amazon allows
the app does not grow with instances), so 1 instance runs at that rate and 3 at a third each; **per-instance cap**: every
instance at 1,000/s, the most \`SP_CONNECT_REFRESH_RATE_PER_SECOND\` allows, which shows what the machine itself sustains.
This machine has 2 CPUs for PostgreSQL, the simulator and the instances together ("machine CPU"; PostgreSQL's processes
are not the benchmark's children, so the runs table at the top counts them as "other work"). Budget: ${r.runs.length} windows of
${s.windowSeconds} s plus the insert, resets and vacuums: ${Math.round(file.durationSeconds)} s this time, under the runner's 180 s limit.

${table(
  [
    'setting',
    'instances',
    'rate limit per instance',
    'wall',
    'token-endpoint calls',
    'calls/s',
    'refreshed',
    'duplicates',
    'failed',
    'claims: n, mean / slowest',
    'CPU-s of the instances',
    'machine CPU',
    `all ${int(s.connections)} at this pace`,
  ],
  r.runs.map(refreshRow),
)}

Where the time goes: a refresher claims up to 100 due connections at a time (\`claimRefreshCandidates\`, \`FOR UPDATE SKIP
LOCKED\`) and its workers wait for the next claim once a batch is done, so the claim's latency is paid on every 100
refreshes (the claims column, as the instances saw it, queueing included). ${planText(r)}

Size of the \`connections\` table (heap with TOAST and maps, plus its ${r.size.afterInsert.indexes} indexes; per connection = size / rows):

${table(
  [
    'state',
    'rows',
    'total',
    'heap + TOAST',
    'indexes',
    'per connection',
    'of which indexes',
    'mean row (`pg_column_size`)',
  ],
  [
    sizeRow('after the insert (both tokens sealed; the steady-state row)', r.size.afterInsert),
    sizeRow('after the runs (dead row versions of the last run not yet vacuumed)', r.size.afterRuns),
    sizeRow(`after \`VACUUM FULL\` (${r.size.vacuumFullSeconds} s)`, r.size.afterVacuumFull),
  ],
)}

Not measured, arithmetic: once the backlog is gone, a warm connection is refreshed when less than the margin (5 min) plus the
lookahead (10 min) is left of its 1-hour token, i.e. about every 45 minutes, so ${int(s.connections)} warm connections need about
${int(s.connections / 2700)} calls/s for the whole cluster (idle ones add a daily health check: ${(s.connections / 86_400).toFixed(1)}/s). At the default
\`SP_CONNECT_REFRESH_RATE_PER_SECOND\` of 5 per instance that is ${Math.ceil(s.connections / 2700 / 5)} instances' worth of rate limit; raise the rate rather than the
instance count.
`
  return { rows, text }
}

// ---------------------------------------------------------------------------------------------------------
// token-api

/** autocannon's latencies are whole milliseconds: 0 means under one. */
const lat = (n: number) => (n === 0 ? '< 1 ms' : `${int(n)} ms`)

function apiRow(t: TokenApiTarget, r: TokenApiRound): string[] {
  return [
    t.name,
    String(r.round),
    `**${int(r.requestsPerSecond)}**`,
    int(r.requests),
    lat(r.latencyMs.p50),
    lat(r.latencyMs.p90),
    lat(r.latencyMs.p99),
    lat(r.latencyMs.max),
    `${r.non2xx} / ${r.errors + r.timeouts}`,
    r.serverCpuSeconds.toFixed(1),
    int(cpuMicrosPerRequest(r)),
    r.loadGeneratorCpuSeconds.toFixed(1),
    pct(r.machineCpuShare),
  ]
}

/** Server CPU per answered request, in µs: unlike req/s it hardly moves when other work shares the machine. */
function cpuMicrosPerRequest(r: TokenApiRound): number {
  return r.requests > 0 ? (r.serverCpuSeconds * 1e6) / r.requests : Number.NaN
}

/** Per round: sp-connect × 1 as a share of bare node:http measured right before it (req/s, and CPU per request). */
function ratioLine(one: TokenApiTarget | undefined, bare: TokenApiTarget | undefined): string {
  if (!one || !bare) return ''
  const parts = one.rounds.flatMap((r) => {
    const b = bare.rounds.find((x) => x.round === r.round)
    if (!b || b.requestsPerSecond === 0) return []
    return [
      `round ${r.round}: ${pct(r.requestsPerSecond / b.requestsPerSecond)} of its req/s, ${(cpuMicrosPerRequest(r) / cpuMicrosPerRequest(b)).toFixed(1)} × its CPU per request`,
    ]
  })
  return parts.length === 0
    ? ''
    : `sp-connect × 1 against bare \`node:http\` in the same round: ${parts.join('; ')}.\n`
}

/** The median of the values (the lower middle one for an even count). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN
}

/** The round with the median throughput, and the spread of all rounds. */
function apiHeadline(t: TokenApiTarget | undefined): string {
  if (!t || t.rounds.length === 0) return 'not run'
  const rps = t.rounds.map((r) => r.requestsPerSecond)
  const mid = t.rounds.find((r) => r.requestsPerSecond === median(rps)) ?? t.rounds[0]
  if (!mid) return 'not run'
  return `**${int(mid.requestsPerSecond)} req/s**, p50 ${lat(mid.latencyMs.p50)}, p99 ${lat(mid.latencyMs.p99)} (rounds: ${span(rps)} req/s)`
}

export function tokenApiSection(file: BenchResultFile<TokenApiResult> | undefined, n: string): Section {
  if (!file) return { rows: [[n, 'token API over HTTP', 'not run yet', '', '', '']], text: '' }
  const r = file.result
  const s = r.settings
  const find = (name: string) => r.targets.find((t) => t.name === name)
  const one = find('sp-connect × 1')
  const three = find('sp-connect × 3')
  const bare = find('bare node:http')
  const failures = r.targets
    .flatMap((t) => t.rounds)
    .reduce((sum, x) => sum + x.non2xx + x.errors + x.timeouts, 0)
  const rounds = r.targets.flatMap((t) => t.rounds)
  const generatorShare =
    rounds.reduce((sum, x) => sum + x.loadGeneratorCpuSeconds, 0) /
    Math.max(
      1e-9,
      rounds.reduce((sum, x) => sum + x.durationSeconds * s.cpus, 0),
    )
  const noService = 'no HTTP service (a library)'
  const rows = [
    [
      n,
      `token API over HTTP on loopback, PostgreSQL: \`POST /v1/connections/:id/access-token\` (cached), ${s.httpConnections} connections, ${s.durationSeconds} s rounds → req/s, p50 / p99 (**2 CPUs shared** by the instances, autocannon and PostgreSQL)`,
      `median round of ${s.rounds}: 1 instance ${apiHeadline(one)}; 3 instances ${apiHeadline(three)}; bare \`node:http\` (the ceiling) ${apiHeadline(bare)}; ${failures} non-2xx/errors`,
      noService,
      noService,
      noService,
    ],
  ]
  const text = `## ${n}. Token API over HTTP on PostgreSQL: 1 and 3 instances beside bare node:http

${file.date} · ${file.durationSeconds} s · \`npm run bench -- token-api\` · PostgreSQL ${r.server.version} · autocannon ${s.autocannon}

**This machine has ${s.cpus} CPUs.** The instances, autocannon (one thread, in the benchmark's process) and PostgreSQL share them, so
3 instances on it cannot do 3 × what 1 does: the 3-instance rounds show what spreading the work over processes buys
on ${s.cpus} cores, not what 3 machines would do. autocannon alone used ${pct(generatorShare)} of all CPUs over the timed rounds.
Budget: ${r.targets.length} targets × (${s.warmupSeconds} s warm-up + ${s.rounds} × ${s.durationSeconds} s) plus starting the instances: ${Math.round(file.durationSeconds)} s this time, under the
runner's 180 s limit.

A database of its own (dropped afterwards) with ${int(s.connections)} connections; the simulator in its own process. Three real
\`sp-connect serve\` processes (\`node src/cli/main.ts serve\`, configured by their environment only, as in production: pool of
10, background refresher on, log level \`info\` with the output discarded) on 127.0.0.1. Before timing, every instance is
asked once for every connection's token (${r.warmupTokenEndpointCalls} token-endpoint calls: the first instance refreshes, the others read the
database), so the timed requests take the **cached path through the whole HTTP stack**: API-key check, routing, the token
manager's cache with its status re-check against the database every 5 s per connection, the JSON answer (${s.responseBytes} bytes)
with the security headers. ${r.timedTokenEndpointCalls} token-endpoint calls during the timed rounds. The ceiling: a bare \`node:http\`
server in a process of its own answering every request with a fixed JSON body of the same size
(\`bench/scenarios/bare-http-server.ts\`).

autocannon ${s.autocannon}: ${s.httpConnections} keep-alive connections, no pipelining, each cycling through the ${int(s.connections)} connections' paths
with the API key. For 3 instances one autocannon run spreads its connections evenly over the three instances' URLs
(${s.httpConnections / 3} each; no balancer in between, which on ${s.cpus} cores would take CPU from the instances), so its latency histogram covers
all three. Each target gets a ${s.warmupSeconds} s untimed warm-up, then ${s.rounds} timed rounds of ${s.durationSeconds} s, the targets' rounds interleaved so drift
on the machine hits all alike. autocannon records latencies in whole milliseconds. CPU-s: the server process(es) and
autocannon during the round, from /proc; "machine CPU" is everything busy on the machine, PostgreSQL included.

${table(
  [
    'target',
    'round',
    'req/s',
    'requests',
    'p50',
    'p90',
    'p99',
    'max',
    'non-2xx / errors',
    'server CPU-s',
    'server CPU µs / request',
    'autocannon CPU-s',
    'machine CPU',
  ],
  r.targets.flatMap((t) => t.rounds.map((x) => apiRow(t, x))),
)}

${ratioLine(one, bare)}`
  return { rows, text }
}
