/**
 * Database failures that mean "try again shortly" rather than "a bug": a lost PostgreSQL connection or a
 * server restart, a statement cancelled by its timeout, a SQLite file locked past the busy timeout. The
 * service answers them with 503 and Retry-After instead of a 500.
 */
import { isConnectionLostError } from './postgres-driver.ts'

/** PostgreSQL: statement_timeout or a cancel request; lock_timeout. */
const BUSY_SQLSTATES = new Set(['57014', '55P03'])
/** The database could not be reached at all (it is down or restarting): the next call connects afresh. */
const CONNECT_FAILURE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTDOWN', 'EHOSTUNREACH'])
/** pg-pool's error when every connection stayed busy past the connection timeout; it carries no code. */
const POOL_TIMEOUT = /^timeout exceeded when trying to connect$/
/** SQLite result codes SQLITE_BUSY and SQLITE_LOCKED (node:sqlite puts them in `errcode`). */
const SQLITE_BUSY_CODES = new Set([5, 6])

export function isStoreUnavailableError(error: unknown): boolean {
  if (isConnectionLostError(error)) return true
  if (typeof error !== 'object' || error === null) return false
  const code = 'code' in error ? error.code : undefined
  if (typeof code === 'string' && (BUSY_SQLSTATES.has(code) || CONNECT_FAILURE_CODES.has(code))) return true
  if (error instanceof Error && POOL_TIMEOUT.test(error.message)) return true
  const errcode = 'errcode' in error ? error.errcode : undefined
  return typeof errcode === 'number' && SQLITE_BUSY_CODES.has(errcode & 0xff)
}
