/** API keys are compared by SHA-256 in constant time; the keys themselves live only with their holders. */
import { hash } from 'node:crypto'
import type { ApiKey } from '../config.ts'
import { hashesEqual } from '../core/authorization/state.ts'

export function findApiKey(keys: readonly ApiKey[], presented: string | undefined): ApiKey | undefined {
  if (!presented || presented.length > 512) return undefined
  // One-shot hashing (the digest of encoding.ts's sha256): this runs on every API request.
  const digest = hash('sha256', presented, 'base64url')
  // Check every key so the time taken does not reveal which one matched.
  let found: ApiKey | undefined
  for (const key of keys) if (hashesEqual(key.hash, digest)) found = key
  return found
}

export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer ([\x21-\x7e]+)$/)
  return match?.[1]
}
