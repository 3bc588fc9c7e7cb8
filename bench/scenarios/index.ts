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
} as const

export type ScenarioName = keyof typeof SCENARIOS

export function isScenarioName(name: string): name is ScenarioName {
  return Object.hasOwn(SCENARIOS, name)
}
