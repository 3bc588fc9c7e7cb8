/**
 * {@link KeyRotationStore} over Kysely: the key ids stored ciphertexts name, and re-encryption of connection
 * rows. Re-encryption changes neither `version` nor `updated_at` (the plaintexts did not change).
 */
import { type Kysely, sql } from 'kysely'
import { clampLimit, type KyselyRoleContext, repeatSafe } from './kysely-common.ts'
import type { SqlDialectName } from './migrator.ts'
import { type Database, toConnectionCiphertexts } from './schema.ts'
import type { ConnectionCiphertexts, KeyRotationStore } from './store.ts'

export class KyselyKeyRotationStore implements KeyRotationStore {
  readonly #db: Kysely<Database>
  readonly #dialect: SqlDialectName

  constructor(context: KyselyRoleContext) {
    this.#db = context.db
    this.#dialect = context.dialect
  }

  /** Every connection, disconnected ones included (their ciphertexts are null). */
  async listCiphertextKeyIds(): Promise<string[]> {
    // The key id sits between the first and second dot of `v1.<key id>.<iv>.<tag>.<body>`; the LIKE keeps only
    // values that have a second dot, so SQLite's substr never sees a negative length.
    const keyId = (column: string) =>
      this.#dialect === 'postgres'
        ? sql<string>`split_part(${sql.ref(column)}, '.', 2)`
        : sql<string>`substr(${sql.ref(column)}, 4, instr(substr(${sql.ref(column)}, 4), '.') - 1)`
    const result = await sql<{ key_id: string }>`
      select key_id from (
        select ${keyId('refresh_token_ciphertext')} as key_id from connections
          where refresh_token_ciphertext like 'v1._%.%'
        union
        select ${keyId('access_token_ciphertext')} as key_id from connections
          where access_token_ciphertext like 'v1._%.%'
        union
        select ${keyId('secret_ciphertext')} as key_id from app_secrets where secret_ciphertext like 'v1._%.%'
      ) as stored_key_ids
      where key_id <> ''`.execute(this.#db)
    // Sorted here: the two databases collate differently.
    return [...new Set(result.rows.map((row) => row.key_id))].sort()
  }

  async listConnectionCiphertexts(
    afterId: string | undefined,
    limit: number,
  ): Promise<ConnectionCiphertexts[]> {
    let query = this.#db
      .selectFrom('connections')
      .select(['id', 'version', 'refresh_token_ciphertext', 'access_token_ciphertext'])
    if (afterId !== undefined) query = query.where('id', '>', afterId)
    const rows = await query.orderBy('id').limit(clampLimit(limit)).execute()
    return rows.map(toConnectionCiphertexts)
  }

  /**
   * Repeat-safe: the write does not bump the version, so a repetition after a first attempt that committed
   * still matches, writes the same ciphertexts and answers true (or false if a refresh has since moved the
   * version, which is also what a late first attempt would have answered).
   */
  async replaceConnectionCiphertexts(
    id: string,
    expectedVersion: number,
    ciphertexts: { refreshTokenCiphertext: string | null; accessTokenCiphertext: string | null },
  ): Promise<boolean> {
    const result = await repeatSafe(() =>
      this.#db
        .updateTable('connections')
        .set({
          refresh_token_ciphertext: ciphertexts.refreshTokenCiphertext,
          access_token_ciphertext: ciphertexts.accessTokenCiphertext,
        })
        .where('id', '=', id)
        .where('version', '=', expectedVersion)
        .executeTakeFirst(),
    )
    return result.numUpdatedRows === 1n
  }
}
