/**
 * Database failures that mean "try again shortly" rather than "a bug": a lost PostgreSQL connection or a
 * server restart, a statement cancelled by its timeout, a SQLite file locked past the busy timeout. The
 * service answers them with 503 and Retry-After instead of a 500.
 */
import { isConnectionLostError } from './postgres.ts'

/** PostgreSQL: statement_timeout or a cancel request; lock_timeout. */
const BUSY_SQLSTATES = new Set(['57014', '55P03'])
/** SQLite result codes SQLITE_BUSY and SQLITE_LOCKED (node:sqlite puts them in `errcode`). */
const SQLITE_BUSY_CODES = new Set([5, 6])

export function isStoreUnavailableError(error: unknown): boolean {
  if (isConnectionLostError(error)) return true
  if (typeof error !== 'object' || error === null) return false
  const code = 'code' in error ? error.code : undefined
  if (typeof code === 'string' && BUSY_SQLSTATES.has(code)) return true
  const errcode = 'errcode' in error ? error.errcode : undefined
  return typeof errcode === 'number' && SQLITE_BUSY_CODES.has(errcode & 0xff)
}
