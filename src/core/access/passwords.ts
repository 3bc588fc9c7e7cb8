/**
 * Operator password hashing with a memory-hard KDF (docs/decisions/0009-operator-console.md): Argon2id from
 * `node:crypto` where this Node has it (24.7+), else scrypt. Hashes are PHC strings that carry the algorithm,
 * its parameters and the salt, so old hashes keep verifying when the defaults change and a Node without
 * Argon2 still verifies scrypt hashes.
 */
import * as nodeCrypto from 'node:crypto'
import { promisify } from 'node:util'

/** OWASP Password Storage Cheat Sheet's Argon2id baseline: 19 MiB, 2 passes, 1 lane. */
const ARGON2ID_PARAMS = Object.freeze({ memory: 19_456, passes: 2, parallelism: 1 })
/** scrypt N=2^15, r=8, p=1: 32 MiB per hash. */
const SCRYPT_PARAMS = Object.freeze({ ln: 15, r: 8, p: 1 })

const SALT_BYTES = 16
const HASH_BYTES = 32
const MAX_PASSWORD_BYTES = 1024
const scryptAsync = promisify(nodeCrypto.scrypt) as (
  password: nodeCrypto.BinaryLike,
  salt: nodeCrypto.BinaryLike,
  keylen: number,
  options: nodeCrypto.ScryptOptions,
) => Promise<Buffer>

type Argon2 = (
  algorithm: 'argon2id',
  parameters: {
    message: Uint8Array
    nonce: Uint8Array
    parallelism: number
    tagLength: number
    memory: number
    passes: number
  },
  callback: (err: Error | null, key: Buffer) => void,
) => void

function argon2Function(): Argon2 | undefined {
  const candidate = (nodeCrypto as unknown as { argon2?: unknown }).argon2
  return typeof candidate === 'function' ? (candidate as Argon2) : undefined
}

/** The algorithm new hashes use in this Node. */
export function passwordAlgorithm(): 'argon2id' | 'scrypt' {
  return argon2Function() ? 'argon2id' : 'scrypt'
}

function argon2id(
  password: Uint8Array,
  salt: Uint8Array,
  p: { memory: number; passes: number; parallelism: number },
  length: number,
): Promise<Buffer> {
  const fn = argon2Function()
  if (!fn) return Promise.reject(new Error('this Node has no Argon2; run Node 24.7 or newer'))
  return new Promise((resolve, reject) =>
    fn('argon2id', { message: password, nonce: salt, tagLength: length, ...p }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  )
}

function scrypt(
  password: Uint8Array,
  salt: Uint8Array,
  p: { ln: number; r: number; p: number },
  length: number,
): Promise<Buffer> {
  const N = 2 ** p.ln
  // Node's default maxmem (32 MiB) is exactly 128·N·r at N=2^15, r=8, which it refuses: allow twice that.
  return scryptAsync(password, salt, length, { N, r: p.r, p: p.p, maxmem: 256 * N * p.r })
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/=+$/, '')
}

/** Hashes a password with a fresh random salt; returns a PHC string. */
export async function hashPassword(password: string, salt?: Uint8Array): Promise<string> {
  const message = Buffer.from(password, 'utf8')
  const nonce = salt ?? nodeCrypto.randomBytes(SALT_BYTES)
  if (argon2Function()) {
    const p = ARGON2ID_PARAMS
    const hash = await argon2id(message, nonce, p, HASH_BYTES)
    return `$argon2id$v=19$m=${p.memory},t=${p.passes},p=${p.parallelism}$${b64(nonce)}$${b64(hash)}`
  }
  const p = SCRYPT_PARAMS
  const hash = await scrypt(message, nonce, p, HASH_BYTES)
  return `$scrypt$ln=${p.ln},r=${p.r},p=${p.p}$${b64(nonce)}$${b64(hash)}`
}

interface Parsed {
  readonly algorithm: 'argon2id' | 'scrypt'
  readonly params: Readonly<Record<string, number>>
  readonly salt: Buffer
  readonly hash: Buffer
}

const PHC =
  /^\$(argon2id|scrypt)(?:\$v=19)?\$([a-z]+=\d+(?:,[a-z]+=\d+)*)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

function parse(stored: string): Parsed | undefined {
  const match = PHC.exec(stored)
  if (!match?.[1] || !match[2] || !match[3] || !match[4]) return undefined
  const params: Record<string, number> = {}
  for (const pair of match[2].split(',')) {
    const [key = '', value = ''] = pair.split('=')
    params[key] = Number(value)
  }
  return {
    algorithm: match[1] as 'argon2id' | 'scrypt',
    params,
    salt: Buffer.from(match[3], 'base64'),
    hash: Buffer.from(match[4], 'base64'),
  }
}

async function derive(parsed: Parsed, password: Uint8Array): Promise<Buffer> {
  const p = parsed.params
  if (parsed.algorithm === 'argon2id') {
    return argon2id(
      password,
      parsed.salt,
      { memory: p['m'] ?? 0, passes: p['t'] ?? 0, parallelism: p['p'] ?? 0 },
      parsed.hash.length,
    )
  }
  return scrypt(
    password,
    parsed.salt,
    { ln: p['ln'] ?? 0, r: p['r'] ?? 0, p: p['p'] ?? 0 },
    parsed.hash.length,
  )
}

/**
 * True when `password` matches the stored PHC hash. The comparison is constant-time; an unparsable hash is
 * false (after the same work as a real check, against a dummy hash).
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const message = Buffer.from(password, 'utf8')
  const parsed = parse(stored)
  const tooLong = message.length > MAX_PASSWORD_BYTES
  if (!parsed || tooLong) {
    // The same work as a real check, so neither case answers faster.
    const fallback = parse(await dummyHash())
    if (fallback) await derive(fallback, message.subarray(0, MAX_PASSWORD_BYTES))
    return false
  }
  const derived = await derive(parsed, message)
  return derived.length === parsed.hash.length && nodeCrypto.timingSafeEqual(derived, parsed.hash)
}

let dummy: Promise<string> | undefined

/**
 * A hash of a random password with the current parameters. Verifying against it costs what verifying a real
 * account costs, so an unknown email answers as slowly as a wrong password (no enumeration by timing).
 */
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(nodeCrypto.randomBytes(32).toString('base64url'))
  return dummy
}

/** Shortest operator password accepted. */
export const MIN_PASSWORD_LENGTH = 12

/** Why a new password is refused, or undefined when it is acceptable. */
export function passwordProblem(password: string): string | undefined {
  if ([...password].length < MIN_PASSWORD_LENGTH)
    return `the password must be at least ${MIN_PASSWORD_LENGTH} characters`
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return 'the password is too long'
  return undefined
}
