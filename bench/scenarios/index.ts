/** The benchmarks `bench/run.ts` knows, in the order it runs them. */
export const SCENARIOS = {
  'cached-token': {
    title: 'Cached token lookup: sequential getAccessToken on a warm cache, beside @sp-api-sdk/auth',
    load: () => import('./cached-token.ts'),
  },
  stampede: {
    title: 'Stampede: 4 processes × 1,000 concurrent callers on one expired connection, one SQLite file',
    load: () => import('./stampede.ts'),
  },
  'lwa-errors': {
    title: '30 % of token-endpoint calls fail with a 5xx: 100 sequential first refreshes',
    load: () => import('./lwa-errors.ts'),
  },
  'many-connections': {
    title: '10,000 connections: warm-cache memory and background refresh at a rate limit',
    load: () => import('./many-connections.ts'),
  },
  'lease-wakeup': {
    title:
      'Lease wake-up on PostgreSQL: 3 processes × 200 callers wait for a 4th’s refresh, LISTEN/NOTIFY vs polling',
    load: () => import('./lease-wakeup.ts'),
  },
  'pg-refresh': {
    title:
      '100,000 connections on PostgreSQL: background refresher with 1 and 3 instances (20 s windows), database size',
    load: () => import('./pg-refresh.ts'),
  },
  'token-api': {
    title: 'Token API over HTTP on PostgreSQL: 1 and 3 `serve` instances beside bare node:http (autocannon)',
    load: () => import('./token-api.ts'),
  },
  'observability-cost': {
    title:
      'Logging + metrics on the cached token path over HTTP: req/s with them on and off, same run (SQLite)',
    load: () => import('./observability-cost.ts'),
  },
  'lwa-outage': {
    title:
      'Sustained token-endpoint outage (every call 503, or hanging): calls per caller and slowest wait, before/after issue 8',
    load: () => import('./lwa-outage.ts'),
  },
  'limiter-cost': {
    title:
      'SP-API limiter cost per call: reservations/s and p50/p99, memory vs SQLite vs PostgreSQL, 1 and 64 keys',
    load: () => import('./limiter-cost.ts'),
  },
  'limiter-fidelity': {
    title:
      'SP-API limiter fidelity: 300 concurrent calls for one seller at rate 5 / burst 10, 3 instances on PostgreSQL (~1 min)',
    load: () => import('./limiter-fidelity.ts'),
  },
  'spapi-passthrough': {
    title:
      'SP-API passthrough over HTTP (cached token), sequential and 64 concurrent, beside a bare node:http proxy and amazon-sp-api',
    load: () => import('./spapi-passthrough.ts'),
  },
} as const

export type ScenarioName = keyof typeof SCENARIOS

export function isScenarioName(name: string): name is ScenarioName {
  return Object.hasOwn(SCENARIOS, name)
}
