/** CLI exit codes by error code (data, not a switch), so scripts can tell failures apart. */
import type { ErrorCode } from '../core/errors.ts'

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  needsReauthorization: 4,
  unavailable: 69,
  config: 78,
} as const

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  invalid_request: EXIT.usage,
  connection_not_found: EXIT.notFound,
  not_found: EXIT.notFound,
  connection_needs_reauthorization: EXIT.needsReauthorization,
  connection_disconnected: EXIT.needsReauthorization,
  lwa_invalid_grant: EXIT.needsReauthorization,
  lwa_unreachable: EXIT.unavailable,
  lwa_server_error: EXIT.unavailable,
  lwa_temporarily_unavailable: EXIT.unavailable,
  lwa_throttled: EXIT.unavailable,
  spapi_unreachable: EXIT.unavailable,
  lease_timeout: EXIT.unavailable,
  store_unavailable: EXIT.unavailable,
  secret_rotation_throttled: EXIT.unavailable,
  config_invalid: EXIT.config,
}

export function exitCodeFor(code: ErrorCode): number {
  return BY_CODE[code] ?? EXIT.failure
}
