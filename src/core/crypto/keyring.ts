/**
 * Encryption at rest for tokens: AES-256-GCM with a fresh 96-bit IV per value, a key id in every ciphertext
 * so decryption needs no guessing and keys can rotate, and additional authenticated data (AAD) that binds a
 * ciphertext to its table, row and column, so a ciphertext copied into another row or column fails to decrypt.
 *
 * Ciphertext format (ASCII, safe in any column type):
 *   v1.<keyId>.<iv, base64url>.<tag, base64url>.<ciphertext, base64url>
 *
 * The keyring holds one primary key (used for new ciphertexts) and any number of older keys kept for
 * decryption until `sp-connect keys rotate` has re-encrypted everything (../shared/SECURITY.md §2).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { SpConnectError } from '../../domain/errors.ts'

const VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/
/**
 * Key text is standard base64 (RFC 4648 §4, `+` and `/`, padded), as `openssl rand -base64 32` and
 * `sp-connect keys generate` print it: 43 characters and one `=` for 32 bytes. Nothing else is accepted
 * (no whitespace, no url-safe `-`/`_`, no missing padding), so two spellings can never name the same key.
 */
const KEY_TEXT = /^[A-Za-z0-9+/]{43}=$/
/**
 * 32 random bytes hold about 30 distinct values; fewer than this many means the key was not drawn at random
 * (all zeros, a repeated byte, a short pattern). The chance that a random key falls below is below 1e-15.
 */
const MIN_DISTINCT_KEY_BYTES = 16

/** Where a ciphertext lives; bound into the AAD. */
export interface CipherContext {
  readonly table: string
  readonly rowId: string
  readonly column: string
}

export interface KeyringKey {
  readonly id: string
  readonly key: Uint8Array
}

/** A ciphertext that could not be opened: tampered with (or malformed), or under a key not in the keyring. */
export interface DecryptFailure {
  readonly code: 'decryption_failed' | 'key_unavailable'
  /** The key id the ciphertext names, or null when it is too malformed to name one. */
  readonly keyId: string | null
  readonly context: CipherContext
}

export class Keyring {
  readonly #keys: ReadonlyMap<string, Uint8Array>
  readonly primaryKeyId: string
  #onDecryptFailure: ((failure: DecryptFailure) => void) | undefined

  /** The first key is the primary. Throws on an empty ring, duplicate ids, bad ids or bad key lengths. */
  constructor(keys: readonly KeyringKey[]) {
    const first = keys[0]
    if (first === undefined) throw new TypeError('The keyring needs at least one key.')
    const map = new Map<string, Uint8Array>()
    for (const { id, key } of keys) {
      if (!KEY_ID.test(id)) throw new TypeError(`Key id "${id}" must be 1-32 letters, digits, "-" or "_".`)
      if (key.length !== KEY_BYTES) throw new TypeError(`Key "${id}" must be exactly ${KEY_BYTES} bytes.`)
      const weak = keyMaterialProblem(key)
      if (weak !== undefined) throw new TypeError(`Key "${id}" ${weak}.`)
      if (map.has(id)) throw new TypeError(`Key id "${id}" appears twice in the keyring.`)
      map.set(id, Uint8Array.from(key))
    }
    this.#keys = map
    this.primaryKeyId = first.id
  }

  get keyIds(): string[] {
    return [...this.#keys.keys()]
  }

  has(keyId: string): boolean {
    return this.#keys.has(keyId)
  }

  encrypt(plaintext: string, context: CipherContext): string {
    const key = this.#keys.get(this.primaryKeyId)
    if (key === undefined) throw new SpConnectError('key_unavailable')
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(aad(this.primaryKeyId, context))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    const tag = cipher.getAuthTag()
    return [VERSION, this.primaryKeyId, b64(iv), b64(tag), b64(body)].join('.')
  }

  /**
   * Tells `listener` about every ciphertext this keyring fails to open (the runtime raises alerts from it).
   * One listener; it must not throw, and it is called before the error is thrown to the caller.
   */
  onDecryptFailure(listener: (failure: DecryptFailure) => void): void {
    this.#onDecryptFailure = listener
  }

  decrypt(ciphertext: string, context: CipherContext): string {
    try {
      return this.#decrypt(ciphertext, context)
    } catch (error) {
      const listener = this.#onDecryptFailure
      if (listener !== undefined && error instanceof SpConnectError) {
        if (error.code === 'decryption_failed' || error.code === 'key_unavailable') {
          listener({ code: error.code, keyId: keyIdOrNull(ciphertext), context })
        }
      }
      throw error
    }
  }

  #decrypt(ciphertext: string, context: CipherContext): string {
    const parsed = parseCiphertext(ciphertext)
    const key = this.#keys.get(parsed.keyId)
    if (key === undefined) {
      throw new SpConnectError('key_unavailable', {
        detail: `${context.table}.${context.column} of ${context.rowId} is under key "${parsed.keyId}", which is not in the keyring`,
      })
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, parsed.iv, { authTagLength: TAG_BYTES })
      decipher.setAAD(aad(parsed.keyId, context))
      decipher.setAuthTag(parsed.tag)
      return Buffer.concat([decipher.update(parsed.body), decipher.final()]).toString('utf8')
    } catch (cause) {
      throw new SpConnectError('decryption_failed', {
        detail: `${context.table}.${context.column} of ${context.rowId} failed authentication`,
        cause,
      })
    }
  }
}

function keyIdOrNull(ciphertext: string): string | null {
  try {
    return parseCiphertext(ciphertext).keyId
  } catch {
    return null
  }
}

/** The key id a ciphertext was made with (to find rows still under an old key). */
export function ciphertextKeyId(ciphertext: string): string {
  return parseCiphertext(ciphertext).keyId
}

/** Parses `SP_CONNECT_ENCRYPTION_KEYS`-style text: `id:base64key,id:base64key`, primary first. */
export function parseKeyringSpec(spec: string): KeyringKey[] {
  return spec
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const colon = part.indexOf(':')
      if (colon <= 0) throw new TypeError('Each key must be written as id:base64key.')
      const id = part.slice(0, colon)
      return { id, key: decodeKeyMaterial(part.slice(colon + 1), id) }
    })
}

/**
 * Decodes one key's text strictly: canonical standard base64 of exactly 32 bytes that are not degenerate.
 * Throws a TypeError naming the key id and the rule, never the text (it is the secret).
 */
export function decodeKeyMaterial(text: string, id: string): Uint8Array {
  // Canonical: re-encoding the bytes gives the text back, so no junk character or non-zero pad bits slip by.
  const bytes = Buffer.from(text, 'base64')
  if (!KEY_TEXT.test(text) || bytes.toString('base64') !== text) {
    throw new TypeError(
      `key "${id}" is not ${KEY_BYTES} bytes of standard base64 (e.g. openssl rand -base64 32)`,
    )
  }
  const weak = keyMaterialProblem(bytes)
  if (weak !== undefined) throw new TypeError(`key "${id}" ${weak}`)
  return new Uint8Array(bytes)
}

/** Why these key bytes are unfit (all zero, too few distinct bytes), or undefined when they look random. */
export function keyMaterialProblem(key: Uint8Array): string | undefined {
  if (key.every((byte) => byte === 0)) return 'is all zero bytes'
  if (new Set(key).size < MIN_DISTINCT_KEY_BYTES) {
    return `has fewer than ${MIN_DISTINCT_KEY_BYTES} distinct bytes, so it is not random`
  }
  return undefined
}

/** A new random 256-bit key, base64 encoded, for `sp-connect keys generate` and development. */
export function generateKeyMaterial(): string {
  return randomBytes(KEY_BYTES).toString('base64')
}

function aad(keyId: string, { table, rowId, column }: CipherContext): Buffer {
  // Length-prefixed fields, so no choice of ids can make two different contexts encode alike.
  const parts = [VERSION, keyId, table, rowId, column].map((s) => `${Buffer.byteLength(s)}:${s}`)
  return Buffer.from(parts.join('|'), 'utf8')
}

function parseCiphertext(ciphertext: string): { keyId: string; iv: Buffer; tag: Buffer; body: Buffer } {
  const parts = ciphertext.split('.')
  const [version, keyId, iv, tag, body] = parts
  if (parts.length !== 5 || version !== VERSION || !keyId || !iv || !tag || body === undefined) {
    throw new SpConnectError('decryption_failed', { detail: 'ciphertext is not in the v1 format' })
  }
  const ivBytes = Buffer.from(iv, 'base64url')
  const tagBytes = Buffer.from(tag, 'base64url')
  if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) {
    throw new SpConnectError('decryption_failed', { detail: 'ciphertext has a malformed IV or tag' })
  }
  return { keyId, iv: ivBytes, tag: tagBytes, body: Buffer.from(body, 'base64url') }
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}
