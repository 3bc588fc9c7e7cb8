/**
 * `GET /readyz`: whether this instance can serve. Liveness (`/healthz`) only says the process answers; readiness
 * also needs the database reachable, the schema current (no pending migration), and the keyring able to open
 * what is stored (a sample row decrypts; no stored row is under a key the ring lacks).
 *
 * The LWA circuit breaker is reported but never makes the instance unready: every instance talks to the same
 * LWA, so an outage would take every instance out of the load balancer at once, turning "tokens temporarily
 * unavailable, cached ones still served" into "nothing answers at all".
 */
import { ciphertextKeyId } from '../core/crypto/keyring.ts'
import { openToken } from '../core/tokens/sealed.ts'
import { isSpConnectError } from '../domain/errors.ts'
import type { Runtime } from '../runtime.ts'

interface ReadinessCheck {
  readonly ok: boolean
  readonly detail?: string
  readonly [extra: string]: unknown
}

interface ReadinessReport {
  readonly status: 'ready' | 'not_ready'
  readonly checks: Readonly<Record<'database' | 'migrations' | 'keyring' | 'lwa_breaker', ReadinessCheck>>
  /** Names of the failed checks. */
  readonly failed: readonly string[]
}

/** The key-id scan reads many rows: repeated at most this often (probes come every few seconds). */
const KEY_SCAN_INTERVAL_MS = 60_000
/** Connections looked at for a sample refresh token to open. */
const SAMPLE_PAGE = 50

interface KeyScan {
  readonly at: number
  readonly keyIds: ReadonlySet<string>
  /** A connection with a refresh token under a key in the ring, to open on every check. */
  readonly sample: { id: string; ciphertext: string } | undefined
}

const scans = new WeakMap<Runtime, KeyScan>()

export async function checkReadiness(runtime: Runtime): Promise<ReadinessReport> {
  const database = await check(async () => {
    await runtime.store.getConnection('readyz')
    return {}
  })
  const migrations = database.ok
    ? await check(async () => {
        const pending = await runtime.store.pendingMigrations()
        return pending.length === 0 ? {} : { ok: false, detail: 'migrations pending', pending }
      })
    : { ok: false, detail: 'database unreachable' }
  const keyring = database.ok
    ? await check(() => checkKeyring(runtime))
    : { ok: false, detail: 'database unreachable' }
  const lwa_breaker = { ok: true, state: runtime.tokens.breaker.state }
  const checks = { database, migrations, keyring, lwa_breaker }
  const failed = Object.entries(checks)
    .filter(([, c]) => !c.ok)
    .map(([name]) => name)
  return { status: failed.length === 0 ? 'ready' : 'not_ready', checks, failed }
}

async function checkKeyring(runtime: Runtime): Promise<ReadinessCheck> {
  const { keyring, store, deps } = runtime
  const now = deps.now()
  let scan = scans.get(runtime)
  if (scan === undefined || now - scan.at >= KEY_SCAN_INTERVAL_MS || now < scan.at) {
    // The key ids of every stored ciphertext (one query, see Store.listCiphertextKeyIds), and one refresh token
    // under a configured key from the first page of connections, to prove the ring really opens it.
    const keyIds = new Set(await store.listCiphertextKeyIds())
    let sample: KeyScan['sample']
    for (const row of await store.listConnectionCiphertexts(undefined, SAMPLE_PAGE)) {
      const refresh = row.refreshTokenCiphertext
      if (refresh !== null && keyring.has(safeKeyId(refresh) ?? '')) {
        sample = { id: row.id, ciphertext: refresh }
        break
      }
    }
    scan = { at: now, keyIds, sample }
    scans.set(runtime, scan)
  }
  const missing = [...scan.keyIds].filter((id) => !keyring.has(id)).sort()
  const base = { keyIds: keyring.keyIds, storedKeyIds: [...scan.keyIds].sort() }
  if (missing.length > 0) {
    return { ok: false, detail: 'stored rows use keys the keyring lacks', missingKeyIds: missing, ...base }
  }
  if (scan.sample !== undefined) {
    try {
      openToken(keyring, scan.sample.id, 'refresh_token', scan.sample.ciphertext)
    } catch (error) {
      return {
        ok: false,
        detail: 'a stored refresh token could not be opened',
        code: isSpConnectError(error) ? error.code : 'internal',
        ...base,
      }
    }
  }
  return { ok: true, sampled: scan.sample !== undefined, ...base }
}

function safeKeyId(ciphertext: string): string | undefined {
  try {
    return ciphertextKeyId(ciphertext)
  } catch {
    return undefined
  }
}

async function check(run: () => Promise<Partial<ReadinessCheck>>): Promise<ReadinessCheck> {
  try {
    return { ok: true, ...(await run()) }
  } catch (error) {
    return {
      ok: false,
      detail: 'check failed',
      code: isSpConnectError(error) ? error.code : 'store_unavailable',
    }
  }
}
