/**
 * Whether a schedule of send times keeps to a usage plan (rate per second, burst): the arrival-curve form of the
 * token bucket that starts full, "any window that starts and ends at a send holds at most
 * burst + length / interval sends". For times sorted ascending that is, for every i < j,
 *
 *     t[j] - t[i] >= (j - i + 1 - burst) * interval
 *
 * which is exactly GCRA conformance (a bucket of `burst` tokens refilled every `interval` never goes negative).
 * Quadratic, for the few hundred sends a test makes.
 */
import type { RatePlan } from '../../src/core/spapi/operations.ts'

/** Float slack in ms: schedules add fractional intervals to epoch times of ~1.8e12 (ulp ~ 2.4e-4 ms). */
const SLACK_MS = 0.01

/** The first window that holds more sends than the plan allows, described, or undefined when none does. */
export function planViolation(sendTimes: readonly number[], plan: RatePlan): string | undefined {
  const t = [...sendTimes].sort((a, b) => a - b)
  const interval = 1000 / plan.rate
  for (let i = 0; i < t.length; i++) {
    for (let j = i + plan.burst; j < t.length; j++) {
      const first = t[i] ?? 0
      const last = t[j] ?? 0
      const needed = (j - i + 1 - plan.burst) * interval
      if (last - first < needed - SLACK_MS) {
        return `${j - i + 1} sends within ${last - first} ms (sends #${i}..#${j}); the plan allows them no sooner than ${needed} ms`
      }
    }
  }
  return undefined
}
