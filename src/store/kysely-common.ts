/**
 * What the Kysely role stores share: the page-size rules of every `list…`/`claim…` method, the context one
 * store handle gives each role, and the mark of statements that are safe to repeat after an ambiguous failure.
 *
 * Some statements are marked {@link repeatSafe}: a driver that loses its connection mid-statement (PostgreSQL,
 * see postgres-driver.ts) may run them again, because repeating them after a first attempt that did commit
 * leaves the same rows and returns the caller the same answer. Reads need no mark. Every other write is *not*
 * safe to repeat after an ambiguous failure: `consumeAuthState` would answer false for the state it just
 * consumed, `updateTokens`/`recordRefreshFailure` would miss their own version bump,
 * `markReauthorizationReminder` would report a recorded reminder as already sent, `claimDueDeliveries` would
 * claim a second batch, and so on.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Kysely } from 'kysely'
import type { SqlDialectName } from './migrator.ts'
import type { Database } from './schema.ts'

/** Page size of the `list…` methods when the caller gives none. */
export const DEFAULT_LIST_LIMIT = 100
/** Largest page a `list…` or `claim…` method returns, whatever the caller asks. */
export const MAX_LIST_LIMIT = 1000

/** What every Kysely role store of one handle is built from. */
export interface KyselyRoleContext {
  readonly db: Kysely<Database>
  /** For the few dialect branches (`FOR UPDATE SKIP LOCKED`, string functions). */
  readonly dialect: SqlDialectName
}

const repeatSafeScope = new AsyncLocalStorage<true>()

/**
 * Runs one store statement marked safe to repeat after an ambiguous connection failure (see the module
 * comment). Only a statement whose repetition, after a first attempt that may have committed unseen, leaves
 * the same rows and gives the same answer qualifies.
 */
export function repeatSafe<T>(statement: () => Promise<T>): Promise<T> {
  return repeatSafeScope.run(true, statement)
}

/**
 * True while a driver executes a statement the store marked {@link repeatSafe}. Read synchronously when the
 * driver is handed the query (the mark follows the async context of the store call).
 */
export function isRepeatSafeStatement(): boolean {
  return repeatSafeScope.getStore() === true
}

/** Clamps a requested page size into [1, {@link MAX_LIST_LIMIT}]; missing or non-numeric means the default. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || Number.isNaN(limit)) return DEFAULT_LIST_LIMIT
  return Math.min(Math.max(Math.trunc(limit), 1), MAX_LIST_LIMIT)
}
