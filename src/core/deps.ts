/**
 * The side effects the library needs, passed in rather than reached for, so tests and the CLI can route
 * `fetch` straight into the simulator, move the clock, and make randomness deterministic.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto'
import type { Metrics } from './metrics.ts'

export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface Deps {
  readonly fetch: typeof fetch
  /** Milliseconds since the epoch. */
  readonly now: () => number
  readonly randomBytes: (size: number) => Uint8Array
  readonly logger: Logger
  /** Waits `ms` milliseconds; aborts early with the signal. Injected so retry tests need no real waiting. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  /** A number in [0, 1) for jitter; injected for reproducible tests. */
  readonly random: () => number
  /** Where counters and timings go (src/core/metrics.ts); absent means `NO_METRICS`. */
  readonly metrics?: Metrics
}

export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
})

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * The platform's fetch, bound once, so code can tell "the default" from an injected fetch (the SP-API client
 * picks its faster transport only for the former).
 */
export const platformFetch: typeof fetch = globalThis.fetch.bind(globalThis)

export function defaultDeps(overrides: Partial<Deps> = {}): Deps {
  return Object.freeze({
    fetch: platformFetch,
    now: Date.now,
    randomBytes: (size: number) => new Uint8Array(nodeRandomBytes(size)),
    logger: silentLogger,
    sleep,
    random: Math.random,
    ...overrides,
  })
}
