import { describe, expect, it } from 'vitest'
import { stallTolerantTimeout } from '../../src/core/lwa/stall-tolerant-timeout.ts'

/** Keeps the event loop busy, as a starved machine or a long synchronous burst would. */
function block(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // busy
  }
}

// Timers that came due during the stall run before this one (same timers phase, earlier due times)
const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0))

describe('stallTolerantTimeout (issue 8: a busy machine waits instead of calling LWA unreachable)', () => {
  it('does not count an event-loop stall as the endpoint being slow, and still fires afterwards', async () => {
    const timer = stallTolerantTimeout(200, 50)
    const wallClock = AbortSignal.timeout(200)
    block(400)
    await nextTurn()
    // The wall-clock timeout has fired; the stall counted as at most two ticks (100 ms) here
    expect(wallClock.aborted).toBe(true)
    expect(timer.signal.aborted).toBe(false)
    await new Promise<void>((resolve) => timer.signal.addEventListener('abort', () => resolve()))
    expect((timer.signal.reason as DOMException).name).toBe('TimeoutError')
  })

  it('dispose stops it', async () => {
    const timer = stallTolerantTimeout(20, 10)
    timer.dispose()
    await new Promise((resolve) => setTimeout(resolve, 60))
    expect(timer.signal.aborted).toBe(false)
  })
})
