/**
 * Waiting for a connection to change, on one store handle: the callers parked in `waitForConnectionChange`
 * (the token manager waiting for another process's refresh), and the PostgreSQL channel whose notifications
 * wake them from other handles and instances (connection-store.ts sends them, postgres-listener.ts receives).
 */

/** The PostgreSQL NOTIFY channel of connection changes; the payload is the connection id. */
export const CONNECTION_CHANGED_CHANNEL = 'sp_connect_connection_changed'

/** Longest wait setTimeout can express (2^31 − 1 ms); longer waits are cut to it (a spurious wake-up). */
const MAX_WAIT_MS = 2 ** 31 - 1

/**
 * The callers of one store handle waiting in `waitForConnectionChange`, by connection id. Waking a connection
 * resolves every wait on it; each wait also ends at its own timeout or abort. After `close()` every wait
 * resolves at once (a spurious wake-up: the caller's next statement reports the closed store).
 */
export class ConnectionChangeWaiters {
  readonly #byId = new Map<string, Set<() => void>>()
  #closed = false

  /** See `Store.waitForConnectionChange`. */
  wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.#closed) return Promise.resolve()
    // A NaN, negative or huge timeout is not the caller's way to fail: it becomes 0 or the longest wait.
    const ms = Number.isNaN(timeoutMs) ? 0 : Math.min(Math.max(timeoutMs, 0), MAX_WAIT_MS)
    return new Promise<void>((resolve, reject) => {
      let waiters = this.#byId.get(id)
      if (waiters === undefined) {
        waiters = new Set()
        this.#byId.set(id, waiters)
      }
      const set = waiters
      const settle = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        set.delete(wake)
        if (set.size === 0 && this.#byId.get(id) === set) this.#byId.delete(id)
      }
      const wake = () => {
        settle()
        resolve()
      }
      const onAbort = () => {
        settle()
        reject(signal?.reason)
      }
      const timer = setTimeout(wake, ms)
      set.add(wake)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Wakes every wait on the connection. */
  wake(id: string): void {
    const waiters = this.#byId.get(id)
    if (waiters === undefined) return
    // Each wake removes itself from the set, so iterate over a copy.
    for (const wake of [...waiters]) wake()
  }

  /** Wakes every wait (after missed notifications: each waiter re-reads its row). */
  wakeAll(): void {
    for (const waiters of [...this.#byId.values()]) for (const wake of [...waiters]) wake()
  }

  /** Wakes every wait, and makes later waits resolve at once. */
  close(): void {
    this.#closed = true
    this.wakeAll()
  }
}
