/** {@link AppSecretStore} over Kysely: LWA client secrets received through rotation, as ciphertexts. */
import type { Kysely } from 'kysely'
import type { KyselyRoleContext } from './kysely-common.ts'
import { type Database, toAppSecretRecord } from './schema.ts'
import type { AppSecretRecord, AppSecretState, AppSecretStore } from './store.ts'

export class KyselyAppSecretStore implements AppSecretStore {
  readonly #db: Kysely<Database>

  constructor(context: KyselyRoleContext) {
    this.#db = context.db
  }

  async insertAppSecret(secret: AppSecretRecord): Promise<void> {
    await this.#db
      .insertInto('app_secrets')
      .values({
        id: secret.id,
        client_id: secret.clientId,
        secret_ciphertext: secret.secretCiphertext,
        state: secret.state,
        created_at: secret.createdAt,
        expires_at: secret.expiresAt,
      })
      .execute()
  }

  /** Newest first (created_at, then id, descending). */
  async listAppSecrets(clientId: string): Promise<AppSecretRecord[]> {
    const rows = await this.#db
      .selectFrom('app_secrets')
      .selectAll()
      .where('client_id', '=', clientId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute()
    return rows.map(toAppSecretRecord)
  }

  /** Changes only the fields given; an unknown id or no changes at all is a no-op. */
  async updateAppSecret(
    id: string,
    changes: { state?: AppSecretState; expiresAt?: number | null; secretCiphertext?: string },
  ): Promise<void> {
    const set = {
      ...(changes.state === undefined ? {} : { state: changes.state }),
      ...(changes.expiresAt === undefined ? {} : { expires_at: changes.expiresAt }),
      ...(changes.secretCiphertext === undefined ? {} : { secret_ciphertext: changes.secretCiphertext }),
    }
    if (Object.keys(set).length === 0) return
    await this.#db.updateTable('app_secrets').set(set).where('id', '=', id).execute()
  }
}
