/**
 * Slows repeated bad sign-ins: after `maxFailures` failures for one key (an email, a client address) within
 * `windowMs`, that key is locked until the window ends. In memory, per process, bounded in size: a flood of
 * distinct keys evicts the oldest entries instead of growing without bound. Several instances each count
 * their own failures, so the effective limit is per instance (docs/decisions/0009-operator-console.md).
 */

interface SignInThrottleOptions {
  readonly maxFailures: number
  readonly windowMs: number
  /** Most keys remembered at once. */
  readonly maxKeys?: number
}

interface Entry {
  failures: number
  windowStart: number
  lockedUntil: number
}

export class SignInThrottle {
  readonly #entries = new Map<string, Entry>()
  readonly #options: Required<SignInThrottleOptions>

  constructor(options: SignInThrottleOptions) {
    this.#options = { maxKeys: 10_000, ...options }
  }

  /** When the key may try again (ms epoch), or undefined when it is not locked at `now`. */
  lockedUntil(key: string, now: number): number | undefined {
    const entry = this.#entries.get(key)
    return entry && entry.lockedUntil > now ? entry.lockedUntil : undefined
  }

  /** Counts a failure; returns true when this failure locked the key. */
  fail(key: string, now: number): boolean {
    let entry = this.#entries.get(key)
    if (!entry || now - entry.windowStart >= this.#options.windowMs) {
      entry = { failures: 0, windowStart: now, lockedUntil: 0 }
    }
    entry.failures++
    if (entry.failures >= this.#options.maxFailures) entry.lockedUntil = now + this.#options.windowMs
    // Re-inserting keeps Map order = least recently failed first, which is what eviction drops.
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    while (this.#entries.size > this.#options.maxKeys) {
      const oldest = this.#entries.keys().next().value
      if (oldest === undefined) break
      this.#entries.delete(oldest)
    }
    return entry.lockedUntil > now
  }

  /** Forgets a key's failures (after a successful sign-in). */
  reset(key: string): void {
    this.#entries.delete(key)
  }
}
