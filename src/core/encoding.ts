/** Small encoding helpers shared by state, keys and ids. */
import { createHash } from 'node:crypto'

export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}

/** SHA-256 of a UTF-8 string, base64url encoded: how secrets such as state values are stored. */
export function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url')
}

/** An opaque, prefixed identifier such as `con_3kq9…` with 128 random bits. */
export function newId(prefix: string, randomBytes: (size: number) => Uint8Array): string {
  return `${prefix}_${base64url(randomBytes(16))}`
}
