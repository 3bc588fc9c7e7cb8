/**
 * Operator accounts and their console sessions: the people who may use the operator console (the dashboard).
 * A sub-store of `Store` (`store.operators`), over the same Kysely handle and portable SQL only.
 *
 * Secrets are never stored: an account keeps a self-describing password hash (PHC string: algorithm,
 * parameters, salt, hash), a session is keyed by the SHA-256 of its 256-bit id. Times are milliseconds.
 * Validating a session and sliding its idle deadline is one conditional UPDATE … RETURNING, so an expired
 * session can never be revived by a racing request.
 */
import type { Kysely, Selectable } from 'kysely'
import { SpConnectError } from '../domain/errors.ts'
import type { Database } from './schema.ts'

/** One row per operator. `email` is stored normalised (trimmed, lower case) and is unique. */
export interface OperatorAccountsTable {
  id: string
  email: string
  password_hash: string
  created_at: number
  updated_at: number
  last_sign_in_at: number | null
}

/** One row per signed-in console session, keyed by the SHA-256 of the session id in the cookie. */
export interface OperatorSessionsTable {
  id_hash: string
  /** The account signed in; null for the dev pseudo-session. */
  operator_id: string | null
  /** Who, for audit events: the operator's email, or `dev`. */
  label: string
  created_at: number
  last_seen_at: number
  /** Sliding: moves to min(now + idle timeout, absolute deadline) on every use. */
  idle_expires_at: number
  absolute_expires_at: number
}

export interface OperatorAccountRecord {
  readonly id: string
  readonly email: string
  /** PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. */
  readonly passwordHash: string
  readonly createdAt: number
  readonly updatedAt: number
  readonly lastSignInAt: number | null
}

export interface OperatorSessionRecord {
  readonly idHash: string
  readonly operatorId: string | null
  readonly label: string
  readonly createdAt: number
  readonly lastSeenAt: number
  readonly idleExpiresAt: number
  readonly absoluteExpiresAt: number
}

export interface OperatorStore {
  /** Inserts an account; false (and nothing changed) when one with that email exists. */
  insertAccount(account: OperatorAccountRecord): Promise<boolean>
  getAccountByEmail(email: string): Promise<OperatorAccountRecord | undefined>
  listAccounts(): Promise<OperatorAccountRecord[]>
  /** Deletes the account and every session of it; false when there was none. */
  deleteAccount(email: string): Promise<boolean>
  recordSignIn(operatorId: string, now: number): Promise<void>

  insertSession(session: OperatorSessionRecord): Promise<void>
  /**
   * The session, if it exists and neither deadline has passed at `now`; in the same statement its idle
   * deadline slides to min(now + idleMs, absolute deadline).
   */
  touchSession(idHash: string, now: number, idleMs: number): Promise<OperatorSessionRecord | undefined>
  deleteSession(idHash: string): Promise<boolean>
  /** Deletes sessions whose idle or absolute deadline is at or before `now`; returns how many. */
  deleteExpiredSessions(now: number): Promise<number>
}

type AccountRow = Selectable<OperatorAccountsTable>
type SessionRow = Selectable<OperatorSessionsTable>

function corrupt(table: string, column: string): SpConnectError {
  return new SpConnectError('internal', { detail: `corrupt row in ${table}: column ${column}` })
}

function str(table: string, column: string, value: unknown): string {
  if (typeof value !== 'string') throw corrupt(table, column)
  return value
}

function int(table: string, column: string, value: unknown): number {
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'bigint'
        ? Number(value)
        : typeof value === 'string' && /^-?\d+$/.test(value)
          ? Number(value)
          : Number.NaN
  if (!Number.isSafeInteger(n)) throw corrupt(table, column)
  return n
}

/** Maps an `operator_accounts` row, or throws `internal` if it is corrupt. */
function toOperatorAccountRecord(row: AccountRow): OperatorAccountRecord {
  const t = 'operator_accounts'
  return {
    id: str(t, 'id', row.id),
    email: str(t, 'email', row.email),
    passwordHash: str(t, 'password_hash', row.password_hash),
    createdAt: int(t, 'created_at', row.created_at),
    updatedAt: int(t, 'updated_at', row.updated_at),
    lastSignInAt: row.last_sign_in_at === null ? null : int(t, 'last_sign_in_at', row.last_sign_in_at),
  }
}

/** Maps an `operator_sessions` row, or throws `internal` if it is corrupt. */
function toOperatorSessionRecord(row: SessionRow): OperatorSessionRecord {
  const t = 'operator_sessions'
  return {
    idHash: str(t, 'id_hash', row.id_hash),
    operatorId: row.operator_id === null ? null : str(t, 'operator_id', row.operator_id),
    label: str(t, 'label', row.label),
    createdAt: int(t, 'created_at', row.created_at),
    lastSeenAt: int(t, 'last_seen_at', row.last_seen_at),
    idleExpiresAt: int(t, 'idle_expires_at', row.idle_expires_at),
    absoluteExpiresAt: int(t, 'absolute_expires_at', row.absolute_expires_at),
  }
}

export class KyselyOperatorStore implements OperatorStore {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  async insertAccount(account: OperatorAccountRecord): Promise<boolean> {
    const row = await this.#db
      .insertInto('operator_accounts')
      .values({
        id: account.id,
        email: account.email,
        password_hash: account.passwordHash,
        created_at: account.createdAt,
        updated_at: account.updatedAt,
        last_sign_in_at: account.lastSignInAt,
      })
      .onConflict((oc) => oc.column('email').doNothing())
      .returning('id')
      .executeTakeFirst()
    return row !== undefined
  }

  async getAccountByEmail(email: string): Promise<OperatorAccountRecord | undefined> {
    const row = await this.#db
      .selectFrom('operator_accounts')
      .selectAll()
      .where('email', '=', email)
      .executeTakeFirst()
    return row && toOperatorAccountRecord(row)
  }

  async listAccounts(): Promise<OperatorAccountRecord[]> {
    const rows = await this.#db.selectFrom('operator_accounts').selectAll().orderBy('email').execute()
    return rows.map(toOperatorAccountRecord)
  }

  async deleteAccount(email: string): Promise<boolean> {
    const row = await this.#db
      .deleteFrom('operator_accounts')
      .where('email', '=', email)
      .returning('id')
      .executeTakeFirst()
    if (row === undefined) return false
    // Its sessions end with it: a deleted operator is signed out everywhere at once.
    await this.#db.deleteFrom('operator_sessions').where('operator_id', '=', row.id).execute()
    return true
  }

  async recordSignIn(operatorId: string, now: number): Promise<void> {
    await this.#db
      .updateTable('operator_accounts')
      .set({ last_sign_in_at: now })
      .where('id', '=', operatorId)
      .execute()
  }

  async insertSession(session: OperatorSessionRecord): Promise<void> {
    await this.#db
      .insertInto('operator_sessions')
      .values({
        id_hash: session.idHash,
        operator_id: session.operatorId,
        label: session.label,
        created_at: session.createdAt,
        last_seen_at: session.lastSeenAt,
        idle_expires_at: session.idleExpiresAt,
        absolute_expires_at: session.absoluteExpiresAt,
      })
      .execute()
  }

  async touchSession(
    idHash: string,
    now: number,
    idleMs: number,
  ): Promise<OperatorSessionRecord | undefined> {
    const row = await this.#db
      .updateTable('operator_sessions')
      .set((eb) => ({
        last_seen_at: now,
        // min(now + idle, absolute), written portably (SQLite has no LEAST).
        idle_expires_at: eb
          .case()
          .when('absolute_expires_at', '<', now + idleMs)
          .then(eb.ref('absolute_expires_at'))
          .else(now + idleMs)
          .end(),
      }))
      .where('id_hash', '=', idHash)
      .where('idle_expires_at', '>', now)
      .where('absolute_expires_at', '>', now)
      .returningAll()
      .executeTakeFirst()
    return row && toOperatorSessionRecord(row)
  }

  async deleteSession(idHash: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('operator_sessions')
      .where('id_hash', '=', idHash)
      .executeTakeFirst()
    return result.numDeletedRows > 0n
  }

  async deleteExpiredSessions(now: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('operator_sessions')
      .where((eb) => eb.or([eb('idle_expires_at', '<=', now), eb('absolute_expires_at', '<=', now)]))
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
