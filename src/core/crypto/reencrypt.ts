/**
 * Key rotation's second half: after a new key became the keyring's primary (on every process), every stored
 * ciphertext still under an older key is decrypted and encrypted again under the primary, row by row.
 *
 * - Idempotent and resumable by construction: a row whose ciphertexts already carry the primary key id is
 *   skipped without decrypting anything, so a rerun after a kill (or an abort) only does what is left.
 * - Every row is written in one atomic, version-fenced statement (`replaceConnectionCiphertexts`), so a kill at
 *   any point leaves each row either wholly old or wholly new, and readable with the keyring either way.
 * - Safe alongside refreshes: the re-encrypting write does not bump the version, so a refresh that read the row
 *   before still lands its own fenced write; a refresh that wrote first makes our write miss its version, and
 *   the row is re-read and re-done (its new access token is already under the primary, its refresh token
 *   may not be).
 * - Fails closed: a row with a ciphertext under a key that is not in the ring is counted as unavailable and
 *   left exactly as it is; it never looks revoked, and restoring the key brings it back.
 */
import { isSpConnectError } from '../../domain/errors.ts'
import type { ConnectionCiphertexts, Store } from '../../store/store.ts'
import { connectionTokenContext, type TokenColumn } from '../tokens/sealed.ts'
import { type CipherContext, ciphertextKeyId, type Keyring } from './keyring.ts'

export const DEFAULT_REENCRYPT_BATCH_SIZE = 200
/** Attempts per row when refreshes keep changing it under us; what is left is reported as `unfinished`. */
const DEFAULT_REENCRYPT_ATTEMPTS = 4

/** Where an LWA client secret's ciphertext lives (the AAD of `app_secrets.secret_ciphertext`). */
export function appSecretContext(secretId: string): CipherContext {
  return { table: 'app_secrets', rowId: secretId, column: 'secret' }
}

interface ReencryptOptions {
  readonly store: Store
  /** The ring to re-encrypt under its primary; older keys in it decrypt what is still under them. */
  readonly keyring: Keyring
  /** LWA client ids whose stored client secrets (`app_secrets`) to re-encrypt as well. */
  readonly appSecretClientIds?: readonly string[]
  /** Connections read and written per batch (1-1000); default 200. */
  readonly batchSize?: number
  /** Rows expected in all (e.g. `scanKeyUsage().rows`), passed on to `onProgress` for a progress bar. */
  readonly total?: number
  /** Called after every batch with the rows looked at so far (connections, then app secrets). */
  readonly onProgress?: (done: number, total?: number) => void
  /** Checked between batches: an abort stops cleanly after the current batch (`completed: false`). */
  readonly signal?: AbortSignal
  /** Attempts per row under concurrent writes; default 4. */
  readonly maxAttempts?: number
}

export interface ReencryptResult {
  /** Rows looked at (connections and app secrets). */
  readonly scanned: number
  /** Rows rewritten under the primary key. */
  readonly reencrypted: number
  /** Rows already wholly under the primary key, or without ciphertexts (disconnected): not touched. */
  readonly skipped: number
  /** Version conflicts met (a refresh or re-authorization wrote the row first); each was re-read and retried. */
  readonly conflicts: number
  /** Rows with a ciphertext under a key id that is not in the ring: left untouched, fail closed. */
  readonly unavailable: number
  /** Rows with a ciphertext that is malformed or fails authentication: left untouched. */
  readonly failed: number
  /** Rows that kept changing through every attempt: still partly under an older key; run again. */
  readonly unfinished: number
  /** False when the signal stopped the walk early; a rerun finishes the job. */
  readonly completed: boolean
  /** The key ids named by `unavailable` rows (sorted), so an operator knows which key to restore. */
  readonly unavailableKeyIds: readonly string[]
}

type RowOutcome = 'reencrypted' | 'skipped' | 'unavailable' | 'failed' | 'unfinished'

/**
 * Re-encrypts every connection token (and the given clients' app secrets) that is not under the keyring's
 * primary key. Walks connections by id in keyset batches; never throws for a bad row, it counts it.
 */
export async function reencryptAll(options: ReencryptOptions): Promise<ReencryptResult> {
  const { store, keyring, signal, onProgress, total } = options
  const batchSize = options.batchSize ?? DEFAULT_REENCRYPT_BATCH_SIZE
  const maxAttempts = options.maxAttempts ?? DEFAULT_REENCRYPT_ATTEMPTS
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1000)
    throw new RangeError('batchSize must be an integer from 1 to 1000')
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new RangeError('maxAttempts must be a positive integer')

  const counts = {
    scanned: 0,
    reencrypted: 0,
    skipped: 0,
    conflicts: 0,
    unavailable: 0,
    failed: 0,
    unfinished: 0,
  }
  const unavailableKeyIds = new Set<string>()
  const tally = (outcome: RowOutcome) => {
    counts.scanned += 1
    counts[outcome] += 1
  }
  const finish = (completed: boolean): ReencryptResult => ({
    ...counts,
    completed,
    unavailableKeyIds: [...unavailableKeyIds].sort(),
  })

  let after: string | undefined
  for (;;) {
    if (signal?.aborted) return finish(false)
    const batch = await store.listConnectionCiphertexts(after, batchSize)
    // Stop on an empty batch rather than a short one: a store may cap the limit below what we asked for.
    if (batch.length === 0) break
    for (const row of batch) {
      tally(await reencryptConnection(store, keyring, row, maxAttempts, counts, unavailableKeyIds))
    }
    after = batch[batch.length - 1]?.id
    onProgress?.(counts.scanned, total)
    // A synchronous driver (node:sqlite) resolves every await as a microtask, which would keep signals, timers
    // and I/O waiting until the whole walk is over; yield to the event loop once per batch.
    await yieldToEventLoop()
  }

  for (const clientId of options.appSecretClientIds ?? []) {
    if (signal?.aborted) return finish(false)
    const secrets = await store.listAppSecrets(clientId)
    for (const secret of secrets) {
      const context = appSecretContext(secret.id)
      const plan = planColumn(keyring, secret.secretCiphertext)
      if (plan.kind === 'unavailable') unavailableKeyIds.add(plan.keyId)
      if (plan.kind !== 'stale') {
        tally(plan.kind === 'current' || plan.kind === 'empty' ? 'skipped' : plan.kind)
        continue
      }
      const sealed = reseal(keyring, secret.secretCiphertext, context)
      if (sealed === undefined) {
        tally('failed')
        continue
      }
      // Unconditional: a secret's plaintext never changes under its id, so any concurrent writer of this
      // column writes the same secret, and either ciphertext is readable.
      await store.updateAppSecret(secret.id, { secretCiphertext: sealed })
      tally('reencrypted')
    }
    if (secrets.length > 0) onProgress?.(counts.scanned, total)
  }
  return finish(true)
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

async function reencryptConnection(
  store: Store,
  keyring: Keyring,
  initial: ConnectionCiphertexts,
  maxAttempts: number,
  counts: { conflicts: number },
  unavailableKeyIds: Set<string>,
): Promise<RowOutcome> {
  let row = initial
  for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
    const refresh = planColumn(keyring, row.refreshTokenCiphertext)
    const access = planColumn(keyring, row.accessTokenCiphertext)
    const plans = [refresh, access]
    // A row is only ever written whole, and only if every ciphertext in it can be read: a row with one
    // unreadable column is left exactly as it was, so nothing is half-migrated or lost.
    for (const plan of plans) if (plan.kind === 'unavailable') unavailableKeyIds.add(plan.keyId)
    if (plans.some((plan) => plan.kind === 'unavailable')) return 'unavailable'
    if (plans.some((plan) => plan.kind === 'failed')) return 'failed'
    if (plans.every((plan) => plan.kind !== 'stale')) return 'skipped'

    const refreshTokenCiphertext = resealColumn(keyring, row, 'refresh_token', refresh.kind)
    const accessTokenCiphertext = resealColumn(keyring, row, 'access_token', access.kind)
    if (refreshTokenCiphertext === undefined || accessTokenCiphertext === undefined) return 'failed'
    const written = await store.replaceConnectionCiphertexts(row.id, row.version, {
      refreshTokenCiphertext,
      accessTokenCiphertext,
    })
    if (written) return 'reencrypted'

    // A refresh or re-authorization wrote the row since we read it: read it again and redo what is left.
    counts.conflicts += 1
    const fresh = await store.getConnection(row.id)
    if (fresh === undefined) return 'skipped'
    row = {
      id: fresh.id,
      version: fresh.version,
      refreshTokenCiphertext: fresh.refreshTokenCiphertext,
      accessTokenCiphertext: fresh.accessTokenCiphertext,
    }
  }
  return 'unfinished'
}

type ColumnPlan =
  | { readonly kind: 'empty' | 'current' | 'stale' | 'failed' }
  | { readonly kind: 'unavailable'; readonly keyId: string }

/** What a ciphertext needs, from its key id alone (no decryption). */
function planColumn(keyring: Keyring, ciphertext: string | null): ColumnPlan {
  if (ciphertext === null) return { kind: 'empty' }
  let keyId: string
  try {
    keyId = ciphertextKeyId(ciphertext)
  } catch {
    return { kind: 'failed' }
  }
  if (keyId === keyring.primaryKeyId) return { kind: 'current' }
  if (!keyring.has(keyId)) return { kind: 'unavailable', keyId }
  return { kind: 'stale' }
}

/** The column's ciphertext under the primary key (unchanged if it needs nothing); undefined if unreadable. */
function resealColumn(
  keyring: Keyring,
  row: ConnectionCiphertexts,
  column: TokenColumn,
  kind: ColumnPlan['kind'],
): string | null | undefined {
  const ciphertext = column === 'refresh_token' ? row.refreshTokenCiphertext : row.accessTokenCiphertext
  if (kind !== 'stale' || ciphertext === null) return ciphertext
  return reseal(keyring, ciphertext, connectionTokenContext(row.id, column))
}

function reseal(keyring: Keyring, ciphertext: string, context: CipherContext): string | undefined {
  try {
    return keyring.encrypt(keyring.decrypt(ciphertext, context), context)
  } catch (error) {
    // Authentication failures (tampering, a ciphertext moved between rows) are counted, never "repaired".
    if (isSpConnectError(error) && (error.code === 'decryption_failed' || error.code === 'key_unavailable'))
      return undefined
    throw error
  }
}

/** How many rows are under one key id. */
export interface KeyUsageEntry {
  readonly id: string
  /** In the keyring given to the scan. */
  readonly configured: boolean
  readonly primary: boolean
  /** Connections with at least one ciphertext under this key. */
  readonly connections: number
  /** App secrets under this key. */
  readonly appSecrets: number
}

export interface KeyUsage {
  readonly primaryKeyId: string
  /** Configured keys in ring order (primary first), then unknown key ids found in the data, sorted. */
  readonly keys: readonly KeyUsageEntry[]
  /** Rows looked at: every connection (with or without tokens) and the given clients' app secrets. */
  readonly rows: number
  /** Connections without any ciphertext (disconnected). */
  readonly connectionsWithoutTokens: number
  /** Rows with a ciphertext under a configured key other than the primary: what `reencryptAll` would do. */
  readonly pending: number
  /** Rows with a ciphertext under a key that is not configured: these fail with `key_unavailable`. */
  readonly unavailable: number
  /** Ciphertexts that are not in a known format. */
  readonly malformed: number
}

/**
 * Counts rows per key id by reading key ids only (nothing is decrypted), for `sp-connect keys status` and to
 * decide whether a rotation has anything to do. A key may be removed from the ring once it counts zero rows.
 */
export async function scanKeyUsage(options: {
  readonly store: Store
  readonly keyring: Keyring
  readonly appSecretClientIds?: readonly string[]
  readonly batchSize?: number
}): Promise<KeyUsage> {
  const { store, keyring } = options
  const batchSize = options.batchSize ?? 1000
  const connections = new Map<string, number>()
  const appSecrets = new Map<string, number>()
  let rows = 0
  let withoutTokens = 0
  let pending = 0
  let unavailable = 0
  let malformed = 0
  const classify = (ciphertexts: readonly (string | null)[], into: Map<string, number>) => {
    rows += 1
    const ids = new Set<string>()
    for (const ciphertext of ciphertexts) {
      if (ciphertext === null) continue
      try {
        ids.add(ciphertextKeyId(ciphertext))
      } catch {
        malformed += 1
      }
    }
    for (const id of ids) into.set(id, (into.get(id) ?? 0) + 1)
    const list = [...ids]
    if (list.some((id) => !keyring.has(id))) unavailable += 1
    else if (list.some((id) => id !== keyring.primaryKeyId)) pending += 1
    return ciphertexts.every((c) => c === null)
  }

  let after: string | undefined
  for (;;) {
    const batch = await store.listConnectionCiphertexts(after, batchSize)
    if (batch.length === 0) break
    for (const row of batch) {
      if (classify([row.refreshTokenCiphertext, row.accessTokenCiphertext], connections)) withoutTokens += 1
    }
    after = batch[batch.length - 1]?.id
  }
  for (const clientId of options.appSecretClientIds ?? []) {
    for (const secret of await store.listAppSecrets(clientId)) classify([secret.secretCiphertext], appSecrets)
  }

  const configured = keyring.keyIds
  const unknown = [...new Set([...connections.keys(), ...appSecrets.keys()])]
    .filter((id) => !keyring.has(id))
    .sort()
  return {
    primaryKeyId: keyring.primaryKeyId,
    keys: [...configured, ...unknown].map((id) => ({
      id,
      configured: keyring.has(id),
      primary: id === keyring.primaryKeyId,
      connections: connections.get(id) ?? 0,
      appSecrets: appSecrets.get(id) ?? 0,
    })),
    rows,
    connectionsWithoutTokens: withoutTokens,
    pending,
    unavailable,
    malformed,
  }
}
