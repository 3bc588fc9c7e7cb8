/**
 * Pending Login-URI requests (the Appstore workflow and the yearly re-authorization): Amazon opened `/login`
 * for a seller, and nothing may be linked until the app's signed-in user approved the request for a tenant and
 * then confirmed it in the same browser. Each step is one conditional UPDATE, so a request moves forward
 * exactly once however many callers race: pending → approved → confirmed, or → rejected / cancelled.
 *
 * Ids, continue tokens and CSRF tokens are stored only as SHA-256 hashes.
 */
import type { Kysely, Selectable } from 'kysely'
import type { Region } from '../domain/regions.ts'
import { isRegion } from '../domain/regions.ts'
import type { Database } from './schema.ts'
import { corruptRow } from './schema.ts'

export const LOGIN_REQUEST_STATUSES = ['pending', 'approved', 'confirmed', 'rejected', 'cancelled'] as const
export type LoginRequestStatus = (typeof LOGIN_REQUEST_STATUSES)[number]

export interface LoginRequestsTable {
  id_hash: string
  status: string
  selling_partner_id: string
  region: string
  amazon_callback_uri: string
  amazon_state: string
  draft: number
  browser_binding_hash: string
  tenant_id: string | null
  tenant_name: string | null
  approved_by: string | null
  continue_hash: string | null
  csrf_hash: string | null
  created_at: number
  expires_at: number
  updated_at: number
}

export interface LoginRequestRecord {
  readonly idHash: string
  readonly status: LoginRequestStatus
  /** The seller Amazon named at the Login URI (a claim until the callback's token proves the account). */
  readonly sellingPartnerId: string
  readonly region: Region
  /** Where Amazon wants the browser back (already checked to be an Amazon confirm URL). */
  readonly amazonCallbackUri: string
  readonly amazonState: string
  /** Amazon sent `version=beta` (a Draft app's test flow). */
  readonly draft: boolean
  readonly browserBindingHash: string
  readonly tenantId: string | null
  readonly tenantName: string | null
  /** Which API key approved it (name or id), for the audit log. */
  readonly approvedBy: string | null
  readonly continueHash: string | null
  readonly csrfHash: string | null
  readonly createdAt: number
  readonly expiresAt: number
  readonly updatedAt: number
}

export interface NewLoginRequest {
  readonly idHash: string
  readonly sellingPartnerId: string
  readonly region: Region
  readonly amazonCallbackUri: string
  readonly amazonState: string
  readonly draft: boolean
  readonly browserBindingHash: string
  readonly createdAt: number
  readonly expiresAt: number
}

export interface LoginRequestApproval {
  readonly tenantId: string
  readonly tenantName: string | null
  readonly approvedBy: string
  readonly continueHash: string
  readonly now: number
}

export interface LoginRequestStore {
  insert(request: NewLoginRequest): Promise<void>
  get(idHash: string): Promise<LoginRequestRecord | undefined>
  getByContinueHash(continueHash: string): Promise<LoginRequestRecord | undefined>
  /** pending → approved, only while unexpired at `now`; returns the approved row or undefined. */
  approve(idHash: string, approval: LoginRequestApproval): Promise<LoginRequestRecord | undefined>
  /** pending or approved → rejected, only while unexpired; returns the row or undefined. */
  reject(idHash: string, now: number): Promise<LoginRequestRecord | undefined>
  /** Records the CSRF token hash of the confirmation page shown for an approved, unexpired request. */
  setCsrf(idHash: string, csrfHash: string, now: number): Promise<boolean>
  /**
   * approved → `to` (confirmed or cancelled), only while unexpired and only if `csrfHash` is the one recorded:
   * true for exactly one caller.
   */
  finish(idHash: string, to: 'confirmed' | 'cancelled', csrfHash: string, now: number): Promise<boolean>
  /** Deletes requests that expired before `before`, whatever their status; returns how many. */
  deleteExpired(before: number): Promise<number>
}

export class KyselyLoginRequestStore implements LoginRequestStore {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  async insert(request: NewLoginRequest): Promise<void> {
    await this.#db
      .insertInto('login_requests')
      .values({
        id_hash: request.idHash,
        status: 'pending',
        selling_partner_id: request.sellingPartnerId,
        region: request.region,
        amazon_callback_uri: request.amazonCallbackUri,
        amazon_state: request.amazonState,
        draft: request.draft ? 1 : 0,
        browser_binding_hash: request.browserBindingHash,
        tenant_id: null,
        tenant_name: null,
        approved_by: null,
        continue_hash: null,
        csrf_hash: null,
        created_at: request.createdAt,
        expires_at: request.expiresAt,
        updated_at: request.createdAt,
      })
      .execute()
  }

  async get(idHash: string): Promise<LoginRequestRecord | undefined> {
    const row = await this.#db
      .selectFrom('login_requests')
      .selectAll()
      .where('id_hash', '=', idHash)
      .executeTakeFirst()
    return row && toLoginRequestRecord(row)
  }

  async getByContinueHash(continueHash: string): Promise<LoginRequestRecord | undefined> {
    const row = await this.#db
      .selectFrom('login_requests')
      .selectAll()
      .where('continue_hash', '=', continueHash)
      .executeTakeFirst()
    return row && toLoginRequestRecord(row)
  }

  async approve(idHash: string, approval: LoginRequestApproval): Promise<LoginRequestRecord | undefined> {
    const row = await this.#db
      .updateTable('login_requests')
      .set({
        status: 'approved',
        tenant_id: approval.tenantId,
        tenant_name: approval.tenantName,
        approved_by: approval.approvedBy,
        continue_hash: approval.continueHash,
        updated_at: approval.now,
      })
      .where('id_hash', '=', idHash)
      .where('status', '=', 'pending')
      .where('expires_at', '>', approval.now)
      .returningAll()
      .executeTakeFirst()
    return row && toLoginRequestRecord(row)
  }

  async reject(idHash: string, now: number): Promise<LoginRequestRecord | undefined> {
    const row = await this.#db
      .updateTable('login_requests')
      .set({ status: 'rejected', updated_at: now })
      .where('id_hash', '=', idHash)
      .where('status', 'in', ['pending', 'approved'])
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst()
    return row && toLoginRequestRecord(row)
  }

  async setCsrf(idHash: string, csrfHash: string, now: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('login_requests')
      .set({ csrf_hash: csrfHash, updated_at: now })
      .where('id_hash', '=', idHash)
      .where('status', '=', 'approved')
      .where('expires_at', '>', now)
      .executeTakeFirst()
    return result.numUpdatedRows === 1n
  }

  async finish(
    idHash: string,
    to: 'confirmed' | 'cancelled',
    csrfHash: string,
    now: number,
  ): Promise<boolean> {
    const result = await this.#db
      .updateTable('login_requests')
      .set({ status: to, csrf_hash: null, continue_hash: null, updated_at: now })
      .where('id_hash', '=', idHash)
      .where('status', '=', 'approved')
      .where('csrf_hash', '=', csrfHash)
      .where('expires_at', '>', now)
      .executeTakeFirst()
    return result.numUpdatedRows === 1n
  }

  async deleteExpired(before: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('login_requests')
      .where('expires_at', '<', before)
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}

function toLoginRequestRecord(row: Selectable<LoginRequestsTable>): LoginRequestRecord {
  const t = 'login_requests'
  const status = LOGIN_REQUEST_STATUSES.find((s) => s === row.status)
  if (status === undefined) throw corruptRow(t, 'status')
  if (!isRegion(row.region)) throw corruptRow(t, 'region')
  return {
    idHash: row.id_hash,
    status,
    sellingPartnerId: row.selling_partner_id,
    region: row.region,
    amazonCallbackUri: row.amazon_callback_uri,
    amazonState: row.amazon_state,
    draft: Number(row.draft) === 1,
    browserBindingHash: row.browser_binding_hash,
    tenantId: row.tenant_id,
    tenantName: row.tenant_name,
    approvedBy: row.approved_by,
    continueHash: row.continue_hash,
    csrfHash: row.csrf_hash,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    updatedAt: Number(row.updated_at),
  }
}
