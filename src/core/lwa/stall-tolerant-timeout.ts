/**
 * A per-attempt timeout that measures the endpoint's slowness, not this process's. `AbortSignal.timeout`
 * counts wall time, so on a starved machine (both cores busy, a long GC, a synchronous burst elsewhere in the
 * process) the timer fires although the answer may already be waiting in a socket buffer we never got to read,
 * and a healthy token endpoint is reported as `lwa_unreachable` (issue 8, point 10). Here the time is counted
 * in ticks, and a tick that arrived late counts as at most two tick lengths: the event loop was stalled, and
 * that stall is not the endpoint's doing. A stalled process therefore waits longer, up to the caller's own
 * deadline (which is wall time and still bounds everything).
 */

interface StallTolerantTimeout {
  readonly signal: AbortSignal
  /** Stops the ticking; call it once the attempt is over. */
  dispose(): void
}

export function stallTolerantTimeout(
  ms: number,
  tickMs = Math.min(250, Math.max(10, ms / 4)),
): StallTolerantTimeout {
  const controller = new AbortController()
  let counted = 0
  let last = performance.now()
  const timer = setInterval(() => {
    const at = performance.now()
    // A late tick means this process did not run; only the length of a normal tick is the endpoint's time
    counted += Math.min(at - last, 2 * tickMs)
    last = at
    if (counted >= ms) {
      clearInterval(timer)
      controller.abort(new DOMException('The LWA attempt timed out.', 'TimeoutError'))
    }
  }, tickMs)
  // Like AbortSignal.timeout: the timer alone does not keep the process alive
  timer.unref?.()
  return {
    signal: controller.signal,
    dispose: () => clearInterval(timer),
  }
}
