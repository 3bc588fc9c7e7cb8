/**
 * How a benchmark assembles sp-connect, the same way `serve` does (test/helpers/stack.ts follows the same
 * pattern): production configuration from an environment, with http allowed to loopback only, a real SQLite
 * file in a temp folder, and `openRuntime`. Connections are written straight into the store with `sealToken`,
 * as an authorization would leave them.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigFromEnv } from '../../src/config.ts'
import { defaultDeps } from '../../src/core/deps.ts'
import { newId } from '../../src/core/encoding.ts'
import { sealToken } from '../../src/core/tokens/sealed.ts'
import { openRuntime, type Runtime } from '../../src/runtime.ts'

/** Where the runtime finds LWA and which app it is. */
export interface LwaTarget {
  readonly tokenUrl: string
  readonly simulatorUrl: string
  readonly appId: string
  readonly clientId: string
  readonly clientSecret: string
}

/** A temp folder removed by `dispose`, even after a failure. */
export interface TempDir {
  readonly path: string
  dispose(): void
}

export function tempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), `sp-connect-bench-${prefix}-`))
  return { path, dispose: () => rmSync(path, { recursive: true, force: true }) }
}

/** The production environment of one sp-connect instance pointed at the simulator. */
export function benchEnv(target: LwaTarget, dbPath: string, encryptionKey: string): Record<string, string> {
  return {
    SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK: '1',
    SP_CONNECT_PUBLIC_URL: 'http://127.0.0.1:1',
    SP_CONNECT_APP_ID: target.appId,
    SP_CONNECT_LWA_CLIENT_ID: target.clientId,
    SP_CONNECT_LWA_CLIENT_SECRET: target.clientSecret,
    SP_CONNECT_LWA_TOKEN_URL: target.tokenUrl,
    SP_CONNECT_CENTRAL_URL_TEMPLATE: `${target.simulatorUrl}/{host}`,
    SP_CONNECT_SPAPI_URL_TEMPLATE: `${target.simulatorUrl}/{host}`,
    DATABASE_URL: dbPath,
    SP_CONNECT_ENCRYPTION_KEYS: `k1:${encryptionKey}`,
    SP_CONNECT_API_KEYS: `bench:${randomBytes(24).toString('base64url')}`,
    SP_CONNECT_REFRESHER: 'off',
    SP_CONNECT_LOG_LEVEL: 'silent',
    // Benchmarks measure throughput with one key from one address: the abuse limits would cap it.
    SP_CONNECT_RATE_LIMIT_API_PER_SECOND: '0',
    SP_CONNECT_RATE_LIMIT_BROWSER_PER_SECOND: '0',
  }
}

export function newEncryptionKey(): string {
  return randomBytes(32).toString('base64')
}

/** Opens a runtime on `env` (migrating the database unless told not to), with a silent logger. */
export function openBenchRuntime(env: Record<string, string>, migrate = true): Promise<Runtime> {
  return openRuntime(loadConfigFromEnv(env), defaultDeps(), { migrate })
}

/** Selling partner ids in Amazon's shape (14 upper-case letters and digits, starting with A), one per index. */
export function sellingPartnerId(index: number, prefix = 'A'): string {
  return `${prefix}${index
    .toString(36)
    .toUpperCase()
    .padStart(14 - prefix.length, '0')}`
}

export interface SeedConnection {
  readonly sellingPartnerId: string
  readonly refreshToken: string
  /** An access token already stored for it, or none (the first call must refresh). */
  readonly accessToken?: { readonly token: string; readonly expiresAt: number }
  /** Marks it used at this time (the background refresher keeps used connections warm). */
  readonly lastUsedAt?: number
}

/** Inserts connections as an authorization would leave them (tokens sealed); returns their ids, in order. */
export async function insertConnections(
  runtime: Runtime,
  seeds: readonly SeedConnection[],
): Promise<string[]> {
  const { store, keyring, deps } = runtime
  const now = deps.now()
  const ids: string[] = []
  for (const seed of seeds) {
    const id = newId('con', deps.randomBytes)
    const row = await store.insertConnection({
      id,
      sellingPartnerId: seed.sellingPartnerId,
      region: 'na',
      accountType: 'seller',
      tenantId: null,
      accountFingerprint: null,
      refreshTokenCiphertext: sealToken(keyring, id, 'refresh_token', seed.refreshToken),
      accessTokenCiphertext: seed.accessToken
        ? sealToken(keyring, id, 'access_token', seed.accessToken.token)
        : null,
      accessTokenExpiresAt: seed.accessToken?.expiresAt ?? null,
      authorizedAt: now,
      reauthorizeBy: now + 365 * 24 * 3600 * 1000,
      now,
    })
    if (!row) throw new Error(`connection for ${seed.sellingPartnerId} already exists`)
    if (seed.lastUsedAt !== undefined) await store.touchConnection(id, seed.lastUsedAt)
    ids.push(id)
  }
  return ids
}

/** Runs `body` and always runs every cleanup (last registered first), keeping the first error. */
export async function withCleanup<T>(body: (defer: (fn: () => unknown) => void) => Promise<T>): Promise<T> {
  const cleanups: (() => unknown)[] = []
  try {
    return await body((fn) => cleanups.push(fn))
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn()
      } catch (error) {
        console.error('bench cleanup failed:', error)
      }
    }
  }
}
