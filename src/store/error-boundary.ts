/**
 * The store's error boundary: a database failure leaves the store as one of our codes, so every caller (API,
 * pages, CLI exit codes, workers) sees `store_unavailable` instead of a driver's error. The database being busy,
 * unreachable, restarting, out of space, read-only, or already closed all mean "try again shortly (or fix the
 * database)", not "a bug". Every other error (a constraint violation a store method relies on, our own
 * `SpConnectError`s) passes through unchanged.
 */
import { SpConnectError } from '../domain/errors.ts'
import { isStoreUnavailableError } from './errors.ts'

/** Kysely after `destroy()`, node:sqlite after `close()` (new and cached statements), pg-pool after `end()`. */
const CLOSED_MESSAGES = [
  /^driver has already been destroyed$/,
  /^database is not open$/,
  /^statement has been finalized$/,
  /^Cannot use a pool after calling end on the pool$/,
]
/** SQLite result codes meaning the file cannot be used now: READONLY, IOERR, CORRUPT-free FULL, CANTOPEN. */
const SQLITE_UNUSABLE_CODES = new Set([8, 10, 13, 14])
const DETAIL_MAX = 200

function isClosedOrUnusable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (CLOSED_MESSAGES.some((pattern) => pattern.test(error.message))) return true
  const errcode = 'errcode' in error ? error.errcode : undefined
  return typeof errcode === 'number' && SQLITE_UNUSABLE_CODES.has(errcode & 0xff)
}

/** `error` as the store reports it: `store_unavailable` for a database failure, anything else unchanged. */
export function toStoreError(error: unknown): unknown {
  if (error instanceof SpConnectError) return error
  if (!isStoreUnavailableError(error) && !isClosedOrUnusable(error)) return error
  // The driver's own words for the logs; they name the failure, not query parameters.
  const detail = error instanceof Error ? `${error.name}: ${error.message}`.slice(0, DETAIL_MAX) : undefined
  return new SpConnectError('store_unavailable', {
    cause: error,
    retryAfterSeconds: 1,
    ...(detail === undefined ? {} : { detail }),
  })
}

/** The sub-stores a store exposes as properties; their methods get the same boundary. */
const SUB_STORES: ReadonlySet<PropertyKey> = new Set(['apiKeys', 'loginRequests', 'operators', 'rateBuckets'])

/**
 * Wraps a store (or sub-store) so that every method's failure, thrown or rejected, goes through
 * {@link toStoreError}. Methods run on the real object, so its private fields keep working.
 */
export function withStoreErrors<T extends object>(target: T): T {
  const methods = new Map<PropertyKey, unknown>()
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object)
      if (typeof value === 'function') {
        let wrapped = methods.get(property)
        if (wrapped === undefined) {
          wrapped = (...args: unknown[]) => {
            try {
              const result: unknown = Reflect.apply(value, object, args)
              return result instanceof Promise
                ? result.catch((error: unknown) => Promise.reject(toStoreError(error)))
                : result
            } catch (error) {
              throw toStoreError(error)
            }
          }
          methods.set(property, wrapped)
        }
        return wrapped
      }
      if (SUB_STORES.has(property) && typeof value === 'object' && value !== null) {
        let wrapped = methods.get(property)
        if (wrapped === undefined) {
          wrapped = withStoreErrors(value)
          methods.set(property, wrapped)
        }
        return wrapped
      }
      return value
    },
  })
}
