/**
 * Caps concurrent token-endpoint calls per process and lets callers who are waiting for a token go before the
 * background refresher: when a slot frees up, an on-demand waiter always gets it first.
 */
export type Priority = 'on_demand' | 'background'

export class PriorityGate {
  readonly #capacity: number
  #inUse = 0
  readonly #waiting: Record<Priority, (() => void)[]> = { on_demand: [], background: [] }

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer')
    this.#capacity = capacity
  }

  /** Resolves when a slot is held; call the returned function exactly once to release it. */
  async acquire(priority: Priority): Promise<() => void> {
    if (this.#inUse < this.#capacity && this.#waiting.on_demand.length === 0) {
      this.#inUse++
    } else {
      await new Promise<void>((resolve) => this.#waiting[priority].push(resolve))
    }
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#waiting.on_demand.shift() ?? this.#waiting.background.shift()
      // The slot passes straight to the next waiter, so #inUse stays the same.
      if (next) next()
      else this.#inUse--
    }
  }

  /** On-demand callers currently waiting for a slot. */
  get onDemandWaiting(): number {
    return this.#waiting.on_demand.length
  }

  get inUse(): number {
    return this.#inUse
  }
}
