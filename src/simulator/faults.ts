/**
 * Fault injection for the token endpoint. Pure: the caller passes the clock reading and the random
 * source, so a seeded random makes the choice reproducible.
 *
 * Order: an outage wins, then throttling, then server errors. Each rate uses its own random draw.
 */
import { GRANT_TYPES, type GrantType, type TokenFaults } from './types.ts'

export type FaultDecision =
  | { kind: 'outage'; status: 503 }
  | { kind: 'throttle'; status: 429; retryAfterSeconds: number }
  | { kind: 'error'; status: 500 | 503 }
  | { kind: 'burst'; status: 500 }

function applies(faults: TokenFaults, grant: GrantType | 'other'): boolean {
  return faults.grants === undefined || (grant !== 'other' && faults.grants.includes(grant))
}

/** The fault to answer with, or undefined to process the request normally. */
export function chooseFault(
  faults: TokenFaults,
  grant: GrantType | 'other',
  now: number,
  random: () => number,
): FaultDecision | undefined {
  if (!applies(faults, grant)) return undefined
  if (faults.outageUntil !== undefined && now < faults.outageUntil) return { kind: 'outage', status: 503 }
  if (faults.failNext !== undefined && faults.failNext > 0) return { kind: 'burst', status: 500 }
  if (faults.throttleRate !== undefined && faults.throttleRate > 0 && random() < faults.throttleRate) {
    return { kind: 'throttle', status: 429, retryAfterSeconds: faults.retryAfterSeconds ?? 1 }
  }
  if (faults.errorRate !== undefined && faults.errorRate > 0 && random() < faults.errorRate) {
    return { kind: 'error', status: random() < 0.5 ? 500 : 503 }
  }
  return undefined
}

/** Added delay for a call, in ms (0 when no latency fault applies). */
export function faultLatency(faults: TokenFaults, grant: GrantType | 'other'): number {
  return applies(faults, grant) ? Math.max(0, faults.latencyMs ?? 0) : 0
}

/** Checks and copies a fault configuration; throws RangeError on values outside their ranges. */
export function validateFaults(faults: TokenFaults): TokenFaults {
  const rate = (name: string, value: number | undefined) => {
    if (value !== undefined && !(value >= 0 && value <= 1))
      throw new RangeError(`${name} must be within 0..1.`)
  }
  const nonNegative = (name: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
      throw new RangeError(`${name} must be a non-negative number.`)
    }
  }
  rate('errorRate', faults.errorRate)
  rate('throttleRate', faults.throttleRate)
  nonNegative('retryAfterSeconds', faults.retryAfterSeconds)
  nonNegative('latencyMs', faults.latencyMs)
  if (faults.failNext !== undefined && !(Number.isInteger(faults.failNext) && faults.failNext >= 0)) {
    throw new RangeError('failNext must be a non-negative integer.')
  }
  if (faults.outageUntil !== undefined && !Number.isFinite(faults.outageUntil)) {
    throw new RangeError('outageUntil must be a finite number of milliseconds.')
  }
  if (faults.grants?.some((g) => !(GRANT_TYPES as readonly string[]).includes(g))) {
    throw new RangeError('grants lists an unknown grant type.')
  }
  const copy: TokenFaults = { ...faults }
  if (faults.grants !== undefined) copy.grants = [...faults.grants]
  return copy
}
