/**
 * Where each token's ciphertext lives, in one place: the AAD binds every ciphertext to its table, row and
 * column, so a refresh token cannot be swapped into another connection or into the access-token column.
 */
import { isSpConnectError } from '../../domain/errors.ts'
import type { CipherContext, Keyring } from '../crypto/keyring.ts'
import type { Metrics } from '../metrics.ts'

/** Where each keyring's decryption failures are counted (set once by the runtime that built it). */
const keyringMetrics = new WeakMap<Keyring, Metrics>()

/**
 * Counts failures to open tokens with this keyring in `metrics`. A side table rather than a parameter, so
 * every caller of {@link openToken} is counted without passing metrics through.
 */
export function countDecryptionFailures(keyring: Keyring, metrics: Metrics): void {
  keyringMetrics.set(keyring, metrics)
}

export type TokenColumn = 'refresh_token' | 'access_token'

export function connectionTokenContext(connectionId: string, column: TokenColumn): CipherContext {
  return { table: 'connections', rowId: connectionId, column }
}

export function sealToken(
  keyring: Keyring,
  connectionId: string,
  column: TokenColumn,
  token: string,
): string {
  return keyring.encrypt(token, connectionTokenContext(connectionId, column))
}

export function openToken(
  keyring: Keyring,
  connectionId: string,
  column: TokenColumn,
  ciphertext: string,
): string {
  try {
    return keyring.decrypt(ciphertext, connectionTokenContext(connectionId, column))
  } catch (error) {
    if (isSpConnectError(error) && (error.code === 'decryption_failed' || error.code === 'key_unavailable'))
      keyringMetrics
        .get(keyring)
        ?.decryptionFailure(error.code === 'key_unavailable' ? 'key_unavailable' : 'tampered')
    throw error
  }
}
