/**
 * The store's error boundary on a real SQLite file: a driver failure leaves the store as `store_unavailable`
 * (503, retryable, CLI exit 69) for every caller, while errors that are not the database's fault pass through.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isSpConnectError } from '../../src/domain/errors.ts'
import { createKyselyStore } from '../../src/store/kysely-store.ts'
import type { Database } from '../../src/store/schema.ts'
import { NodeSqliteDialect, openSqliteDatabase, openSqliteStore } from '../../src/store/sqlite.ts'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sp-connect-store-errors-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  )
}

describe('store error boundary', () => {
  it('a database closed under the store (the driver fails) answers store_unavailable', async () => {
    const raw = openSqliteDatabase(join(dir, 'closed-under.db'))
    const store = createKyselyStore(new Kysely<Database>({ dialect: new NodeSqliteDialect(raw) }), {
      dialect: 'sqlite',
    })
    await store.migrate()
    expect(await store.getConnection('con_missing')).toBeUndefined()
    raw.close()
    const error = await failureOf(store.getConnection('con_missing'))
    expect(isSpConnectError(error, 'store_unavailable')).toBe(true)
    expect((error as { status: number }).status).toBe(503)
    // Sub-stores are behind the same boundary.
    expect(isSpConnectError(await failureOf(store.apiKeys.list()), 'store_unavailable')).toBe(true)
  })

  it('a closed store answers store_unavailable, not a driver message', async () => {
    const store = await openSqliteStore({ path: join(dir, 'closed.db') })
    await store.migrate()
    await store.close()
    const error = await failureOf(store.listEvents({ limit: 1 }))
    expect(isSpConnectError(error, 'store_unavailable')).toBe(true)
  })

  it('a failure that is not the database’s passes through unchanged', async () => {
    const store = await openSqliteStore({ path: join(dir, 'ok.db') })
    try {
      await store.migrate()
      const secret = {
        id: 'sec_1',
        clientId: 'amzn1.application-oa2-client.one',
        secretCiphertext: 'v1.k1.a.b.c',
        state: 'active' as const,
        createdAt: 1,
        expiresAt: null,
      }
      await store.insertAppSecret(secret)
      // A duplicate id is the caller's problem (a constraint), not an unavailable database.
      const error = await failureOf(store.insertAppSecret(secret))
      expect(error).toBeInstanceOf(Error)
      expect(isSpConnectError(error, 'store_unavailable')).toBe(false)
    } finally {
      await store.close()
    }
  })
})
