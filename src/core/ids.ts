/**
 * Format checks for the ids that arrive in paths, queries and bodies (connection, tenant, API key, event), so
 * a 10 KB id or one with control bytes is a 400 before it reaches a database, never a 500 from a driver (NUL
 * bytes are an error in a PostgreSQL text value) or a full scan with a huge bound parameter.
 */
import { SpConnectError } from '../domain/errors.ts'

/** Longest tenant id an application may use (the same bound the connect-session API has always had). */
const MAX_TENANT_ID_LENGTH = 256

/** Generated ids are `<prefix>_` + base64url (128 random bits: 22 characters); some room for other sources. */
const OPAQUE_ID_BODY = /^[A-Za-z0-9_-]{1,64}$/

// C0 and C1 control characters and DEL: never part of an identifier, and the stuff of log injection.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

function isOpaqueId(prefix: string, value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.startsWith(`${prefix}_`) &&
    OPAQUE_ID_BODY.test(value.slice(prefix.length + 1))
  )
}

/** A connection id as sp-connect makes them: `con_` + base64url. */
export function isConnectionId(value: unknown): value is string {
  return isOpaqueId('con', value)
}

/** An API key id: `key_` + base64url. */
export function isApiKeyId(value: unknown): value is string {
  return isOpaqueId('key', value)
}

/** An event id: `evt_` + base64url. */
export function isEventId(value: unknown): value is string {
  return isOpaqueId('evt', value)
}

/**
 * A tenant id is the application's own user or organisation id, so its format is the application's: any
 * 1–256 characters of well-formed Unicode without control characters.
 */
export function isTenantId(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length >= 1 &&
    value.length <= MAX_TENANT_ID_LENGTH &&
    value.isWellFormed() &&
    !CONTROL.test(value)
  )
}

/** Throws `invalid_request` naming `field` (never the value) unless `check(value)`. */
export function requireId<T extends string>(
  check: (value: unknown) => value is T,
  value: unknown,
  field: string,
): T {
  if (!check(value)) throw new SpConnectError('invalid_request', { detail: `invalid: ${field}` })
  return value
}
