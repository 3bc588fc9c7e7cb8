/** The limiter-cost section of docs/benchmarks.md (see report.ts). */
import type { LimiterCostCase, LimiterCostResult } from '../scenarios/limiter-cost.ts'
import type { BenchResultFile } from './report.ts'

export interface LimiterSection {
  readonly rows: string[][]
  readonly text: string
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number) => `${n.toLocaleString('en-US', { maximumFractionDigits: 3 })} ms`
const STORE_NAMES = {
  memory: 'memory (one process)',
  sqlite: 'SQLite file',
  postgres: 'PostgreSQL, UNLOGGED table (ships)',
  'postgres-logged': 'PostgreSQL, logged table (before)',
  'postgres-logged-async': 'PostgreSQL, logged, SET LOCAL synchronous_commit = off',
} as const

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

export function limiterCostSection(
  file: BenchResultFile<LimiterCostResult> | undefined,
  n: string,
): LimiterSection {
  if (!file) return { rows: [[n, 'SP-API limiter cost per call', 'not run yet', '', '', '']], text: '' }
  const { settings: s, cases } = file.result
  const find = (backend: LimiterCostCase['backend'], keys: number) =>
    cases.find((c) => c.backend === backend && c.keys === keys)
  const brief = (c: LimiterCostCase | undefined) =>
    c ? `${int(c.medianPerSecond)}/s (p99 ${ms(c.p99Ms)})` : 'not run'
  const noPeer = 'no shared limiter'
  const rows = [
    [
      n,
      `SP-API limiter, reservations/s with ${s.callers} concurrent callers, 64 keys (1 key)`,
      `PostgreSQL **${brief(find('postgres', 64))}** (${brief(find('postgres', 1))}), logged table before: ${brief(find('postgres-logged', 64))}; SQLite ${brief(find('sqlite', 64))}; memory ${brief(find('memory', 64))}`,
      noPeer,
      noPeer,
      noPeer,
    ],
  ]
  const text = `## ${n}. SP-API limiter: cost per call

${file.date} · ${file.durationSeconds} s · \`npm run bench -- limiter-cost\` · PostgreSQL ${s.postgresVersion} (fsync ${s.postgresFsync}, synchronous_commit ${s.postgresSynchronousCommit})

\`acquire\` on a plan so large that every turn is "now", so each call is one reservation (one
\`INSERT … ON CONFLICT DO UPDATE … RETURNING\` on the databases) and no wait: the price of sharing the usage plan.
${s.callers} callers in one process loop on \`acquire\` for ${s.roundSeconds} s per round, ${s.rounds} rounds per store (alternating order,
after a warm-up); latency is per call. One key puts every caller on the same row (PostgreSQL serializes them on
its row lock); 64 keys spread them. PostgreSQL: a database of its own per variant on ${s.postgres}, pool of
${s.postgresPool}. The rate-bucket table ships UNLOGGED (migration 2026-11-30T05): its commits wait for no WAL flush.
Beside it, the same table switched back to logged (as before that migration), and the logged table with each
statement wrapped in \`BEGIN; SET LOCAL synchronous_commit = off; …; COMMIT\` (the alternative considered);
docs/decisions/0015-rate-buckets.md weighs them.

${table(
  ['bucket store', 'keys', 'reservations/s (median round)', 'p50', 'p99', 'calls', 'rounds (per s)'],
  cases.map((c) => [
    STORE_NAMES[c.backend],
    String(c.keys),
    int(c.medianPerSecond),
    ms(c.p50Ms),
    ms(c.p99Ms),
    int(c.calls),
    c.rounds.map((r) => int(r.reservationsPerSecond)).join(', '),
  ]),
)}
`
  return { rows, text }
}
