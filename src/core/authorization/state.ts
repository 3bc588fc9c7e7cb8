/**
 * `state` and browser binding. A state value carries 256 random bits, is stored only as a SHA-256 hash,
 * lives 10 minutes, is consumed once, and is bound to the browser that started the flow by a cookie whose
 * value (also stored only as a hash) must come back with the callback (RFC 9700 §4.7; SECURITY.md §1).
 */
import { timingSafeEqual } from 'node:crypto'
import { base64url, sha256 } from '../encoding.ts'

const STATE_BYTES = 32
const BINDING_BYTES = 32
/** base64url of 32 bytes, unpadded. */
const RANDOM_VALUE = /^[A-Za-z0-9_-]{43}$/

export function generateState(randomBytes: (size: number) => Uint8Array): string {
  return base64url(randomBytes(STATE_BYTES))
}

export function generateBrowserBinding(randomBytes: (size: number) => Uint8Array): string {
  return base64url(randomBytes(BINDING_BYTES))
}

/** True for values shaped like ours; anything else is rejected before touching the store. */
export function isWellFormedRandomValue(value: string): boolean {
  return RANDOM_VALUE.test(value)
}

export function hashSecretValue(value: string): string {
  return sha256(value)
}

/** Compares two hashes in constant time. */
export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}
