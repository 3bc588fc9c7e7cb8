/**
 * Where each token's ciphertext lives, in one place: the AAD binds every ciphertext to its table, row and
 * column, so a refresh token cannot be swapped into another connection or into the access-token column.
 */
import type { CipherContext, Keyring } from '../crypto/keyring.ts'

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
  return keyring.decrypt(ciphertext, connectionTokenContext(connectionId, column))
}
