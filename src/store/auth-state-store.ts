/**
 * {@link AuthStateStore} over Kysely: auth states and connect sessions, stored by hash. `consumeAuthState` is
 * one conditional UPDATE, so exactly one of any number of racing callbacks wins.
 */
import type { Kysely } from 'kysely'
import type { KyselyRoleContext } from './kysely-common.ts'
import { type Database, toAuthStateRecord, toConnectSessionRecord } from './schema.ts'
import type { AuthStateRecord, AuthStateStore, ConnectSessionRecord } from './store.ts'

export class KyselyAuthStateStore implements AuthStateStore {
  readonly #db: Kysely<Database>

  constructor(context: KyselyRoleContext) {
    this.#db = context.db
  }

  async insertAuthState(state: AuthStateRecord): Promise<void> {
    await this.#db
      .insertInto('auth_states')
      .values({
        state_hash: state.stateHash,
        flow: state.flow,
        region: state.region,
        account_type: state.accountType,
        tenant_id: state.tenantId,
        return_to: state.returnTo,
        browser_binding_hash: state.browserBindingHash,
        selling_partner_id: state.sellingPartnerId,
        connection_id: state.connectionId,
        created_at: state.createdAt,
        expires_at: state.expiresAt,
        consumed_at: state.consumedAt,
      })
      .execute()
  }

  async getAuthState(stateHash: string): Promise<AuthStateRecord | undefined> {
    const row = await this.#db
      .selectFrom('auth_states')
      .selectAll()
      .where('state_hash', '=', stateHash)
      .executeTakeFirst()
    return row && toAuthStateRecord(row)
  }

  async consumeAuthState(stateHash: string, now: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('auth_states')
      .set({ consumed_at: now })
      .where('state_hash', '=', stateHash)
      .where('consumed_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst()
    return result.numUpdatedRows === 1n
  }

  async deleteExpiredAuthStates(before: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('auth_states')
      .where('expires_at', '<', before)
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  async deleteConsumedAuthStates(before: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('auth_states')
      .where('consumed_at', 'is not', null)
      .where('consumed_at', '<', before)
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  async insertConnectSession(session: ConnectSessionRecord): Promise<void> {
    await this.#db
      .insertInto('connect_sessions')
      .values({
        token_hash: session.tokenHash,
        tenant_id: session.tenantId,
        region: session.region,
        account_type: session.accountType,
        marketplace: session.marketplace,
        return_to: session.returnTo,
        connection_id: session.connectionId,
        created_at: session.createdAt,
        expires_at: session.expiresAt,
      })
      .execute()
  }

  async getConnectSession(tokenHash: string): Promise<ConnectSessionRecord | undefined> {
    const row = await this.#db
      .selectFrom('connect_sessions')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst()
    return row && toConnectSessionRecord(row)
  }

  async deleteExpiredConnectSessions(before: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('connect_sessions')
      .where('expires_at', '<', before)
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
