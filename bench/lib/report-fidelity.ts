/** The limiter-fidelity section of docs/benchmarks.md (see report.ts). */
import type { LimiterFidelityResult } from '../scenarios/limiter-fidelity.ts'
import type { BenchResultFile } from './report.ts'

export interface FidelitySection {
  readonly rows: string[][]
  readonly text: string
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

const outcomesText = (outcomes: Readonly<Record<string, number>>) =>
  Object.entries(outcomes)
    .sort(([, a], [, b]) => b - a)
    .map(([outcome, n]) => `${n} × ${outcome}`)
    .join(', ')

export function limiterFidelitySection(
  file: BenchResultFile<LimiterFidelityResult> | undefined,
  n: string,
): FidelitySection {
  const title = 'SP-API limiter fidelity, 3 instances on PostgreSQL'
  if (!file) return { rows: [[n, title, 'not run yet', '', '', '']], text: '' }
  const r = file.result
  const s = r.settings
  const noPeer = 'no shared limiter'
  const rows = [
    [
      n,
      `${title}: ${s.calls} concurrent calls at rate ${s.plan.rate} / burst ${s.plan.burst}`,
      `**${r.simulator429s} × 429** at the simulator; ${outcomesText(r.outcomes)}; ${r.wallSeconds} s (ideal ${r.idealSeconds} s)`,
      noPeer,
      noPeer,
      noPeer,
    ],
  ]
  const text = `## ${n}. SP-API limiter fidelity: ${s.instances} instances, one seller, one plan

${file.date} · ${file.durationSeconds} s · \`npm run bench -- limiter-fidelity\` · PostgreSQL ${s.postgresVersion} on ${s.postgres}

${s.calls} calls for one seller on \`${s.operation}\`, started at the same instant, ${s.calls / s.instances} in each of ${s.instances} sp-connect
processes (pool of ${s.poolSizePerInstance} each) sharing one database, every one through \`SpApiClient.call\` (token, limiter
reservation, 429 hold-off and retry as shipped), against one simulator process that enforces the plan per (app,
seller, operation) with Amazon's 429 \`QuotaExceeded\`. Plan: rate ${s.plan.rate}/s, burst ${s.plan.burst}, set at the simulator
with \`POST /_control/usage-plans\` and given to sp-connect's limiter for the key (the operation's published plan is
${s.publishedPlan.rate}/s, burst ${s.publishedPlan.burst}; no operation the simulator implements is published at 5/10). Each call's deadline:
${s.callTimeoutMs / 1000} s.

${table(
  ['measure', 'value'],
  [
    ['429s served by the simulator', `**${r.simulator429s}**`],
    ['what the callers got', outcomesText(r.outcomes)],
    ['per instance', r.outcomesPerInstance.map(outcomesText).join(' · ')],
    ['wall time, start to last answer', `**${r.wallSeconds} s**`],
    [`ideal: (${s.calls} − ${s.plan.burst}) / ${s.plan.rate}`, `${r.idealSeconds} s`],
    [`burst (${s.plan.burst} calls) answered by`, `${r.burstAnsweredSeconds} s`],
    ['after the burst', `${r.steadyCallsPerSecond} calls/s (plan: ${s.plan.rate})`],
    ['most answers in any 1 s window', String(r.maxAnswersInOneSecond)],
  ],
)}

Why the plan is given rather than learned: sp-connect starts from the published table and learns only the rate
from \`x-amzn-RateLimit-Limit\`, not the burst. From ${s.publishedPlan.rate}/s, burst ${s.publishedPlan.burst}, the first ${s.publishedPlan.burst} calls would go at once
(${s.publishedPlan.burst - s.plan.burst} of them into 429s) and each reservation would move the bucket on by ${Math.round(1000 / s.publishedPlan.rate / 100) / 10} s before the first answer taught the new
rate, so the rest would be refused at their deadline instead of paced (docs/decisions/0015-rate-buckets.md, "Not done").

Turns are granted exactly one interval apart, but the simulator counts arrivals: a request delayed on its way (a
busy event loop, a pool connection, the loaded machine) lets the next one arrive less than an interval after it,
and with the bucket drained to zero that one is refused. Such a 429 is backed off from and retried within the
deadline, so callers still get 200; the wall time includes those waits.
`
  return { rows, text }
}
