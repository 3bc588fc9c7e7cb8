/** The lwa-outage section of docs/benchmarks.md (see report.ts). */
import type { LwaOutageResult, OutageRun } from '../scenarios/lwa-outage.ts'
import type { BenchResultFile } from './report.ts'

export interface LwaOutageSection {
  readonly rows: string[][]
  readonly text: string
}

const pct = (n: number) => `${(n * 100).toLocaleString('en-US', { maximumFractionDigits: 1 })} %`

export function lwaOutageSection(
  file: BenchResultFile<LwaOutageResult> | undefined,
  n: string,
): LwaOutageSection {
  if (!file) return { rows: [[n, 'token-endpoint outage', 'not run yet', '', '', '']], text: '' }
  const r = file.result
  const find = (mode: OutageRun['mode'], settings: OutageRun['settings']) =>
    r.runs.find((x) => x.mode === mode && x.settings === settings)
  const pair = (mode: OutageRun['mode']) => {
    const b = find(mode, 'before')
    const a = find(mode, 'after')
    return b && a
      ? `before: ${b.callsPerCaller} calls per caller, ${pct(b.retryShare)} retries, slowest wait ${b.slowestWaitSeconds} s; **after: ${a.callsPerCaller}, ${pct(a.retryShare)}, ${a.slowestWaitSeconds} s**`
      : 'incomplete'
  }
  const notMeasured = 'not measured'
  const rows = [
    [
      n,
      'token endpoint answers every call 503 (40 s, a caller every 100 ms)',
      pair('503'),
      notMeasured,
      notMeasured,
      notMeasured,
    ],
    [
      `${n}b`,
      'token endpoint hangs (20 s, a caller every second)',
      pair('hang'),
      notMeasured,
      notMeasured,
      notMeasured,
    ],
  ]
  const plan = r.settings.plan
  const line = (x: OutageRun) =>
    `| ${x.mode} | ${x.settings} | ${x.callers} | ${x.tokenEndpointCalls} | ${x.retries} (${pct(x.retryShare)}) | ${x.callsPerCaller} | ${x.p50WaitSeconds} s | ${x.slowestWaitSeconds} s | ${Object.entries(
      x.failures,
    )
      .map(([code, count]) => `${code} ${count}`)
      .join(', ')} |`
  const table = [
    '| endpoint | settings | callers | token-endpoint calls | of them retries | calls per caller | median wait | slowest wait | callers got |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.runs.map(line),
  ].join('\n')
  const b = r.settings.before
  const text = `## ${n}. A sustained token-endpoint outage, before and after issue 8

\`bench/scenarios/lwa-outage.ts\`: a fake token endpoint on loopback that answers every call \`503
temporarily_unavailable\` at once (a new caller every ${plan['503'].everyMs} ms for ${plan['503'].forMs / 1000} s), or reads every call and
never answers (a caller every ${plan.hang.everyMs / 1000} s for ${plan.hang.forMs / 1000} s). Each caller asks \`TokenManager.getAccessToken\` for a
connection of its own with no stored access token (real SQLite store, LWA client, breaker; real time). **before**:
the settings before issue 8, by options: ${b.maxAttempts} attempts, the old retry budget (${b.budget.ratio} per request, ${b.budget.minPerSecond}/s, ${b.budget.max}
saved up, starting full), no caller deadline, retries after failed refreshes and in the half-open probe.
**after**: the defaults (${r.settings.after.maxAttempts} attempts, ${r.settings.after.deadlineSeconds} s caller deadline, budget of 2 saved up + 0.1 per request + 1 per 20 s,
one attempt per call after a failed refresh and for the probe). The four runs share the machine and the run.

${table}

The breaker (open 30 s after 5 failed refreshes) fails most callers fast in both; what changed is how much each
failed refresh costs the endpoint, and how long a caller can be kept waiting. With the endpoint hanging, before,
the first callers waited for 5 attempts of 10 s each (the issue's ~51 s); after, no caller waits past the 15 s
deadline. The retries left after are the first failed refresh's (the 2 saved-up retries), so their share falls
as an outage goes on (every later call is a single attempt).
`
  return { rows, text }
}
