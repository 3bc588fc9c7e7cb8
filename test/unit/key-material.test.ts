/**
 * Encryption keys are canonical standard base64 of exactly 32 random-looking bytes; webhook secrets are not a
 * repeated character. Problems name the variable (and key id), never the value.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfigFromEnv } from '../../src/config.ts'
import { decodeKeyMaterial, generateKeyMaterial, Keyring } from '../../src/core/crypto/keyring.ts'

const base = {
  SP_CONNECT_PUBLIC_URL: 'https://connect.example.com/',
  SP_CONNECT_APP_ID: 'amzn1.sp.solution.11111111-2222-3333-4444-555555555555',
  SP_CONNECT_LWA_CLIENT_ID: 'amzn1.application-oa2-client.0123456789abcdef',
  SP_CONNECT_LWA_CLIENT_SECRET: 'amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef',
  DATABASE_URL: '/var/lib/sp-connect/db.sqlite',
  SP_CONNECT_API_KEYS: `backend:${'k'.repeat(40)}`,
}

function problemsWithKey(keyText: string): readonly string[] {
  try {
    loadConfigFromEnv({ ...base, SP_CONNECT_ENCRYPTION_KEYS: `k1:${keyText}` })
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** The same 32 bytes spelled with a non-zero pad bit in the last character: not canonical. */
function withPadBitSet(text: string): string {
  const last = ALPHABET.indexOf(text[42] ?? 'A')
  return `${text.slice(0, 42)}${ALPHABET[last | 1]}=`
}

/** A random key whose base64 contains at least one `+` or `/`, so its url-safe spelling differs. */
function keyWithUrlUnsafeCharacters(): string {
  for (;;) {
    const text = randomBytes(32).toString('base64')
    if (/[+/]/.test(text)) return text
  }
}

describe('encryption key material', () => {
  it('accepts a random 32-byte key in standard base64, as `keys generate` makes it', () => {
    for (let i = 0; i < 50; i++) {
      const text = generateKeyMaterial()
      expect(problemsWithKey(text)).toEqual([])
      expect(Buffer.from(decodeKeyMaterial(text, 'k1')).toString('base64')).toBe(text)
    }
  })

  const good = randomBytes(32).toString('base64')
  const cases: [string, string][] = [
    ['a junk character inside', `${good.slice(0, 10)}!${good.slice(11)}`],
    ['a junk character appended', `${good}*`],
    ['whitespace inside', `${good.slice(0, 20)} ${good.slice(20)}`],
    ['a tab inside', `${good.slice(0, 5)}\t${good.slice(5)}`],
    ['31 bytes', randomBytes(31).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['no padding', good.replace(/=+$/, '')],
    ['non-zero pad bits (decodes to the same bytes)', withPadBitSet(good)],
    ['all zero bytes', Buffer.alloc(32).toString('base64')],
    ['one repeated byte', Buffer.alloc(32, 7).toString('base64')],
    ['a short repeated pattern', Buffer.from(Array.from({ length: 32 }, (_, i) => i % 4)).toString('base64')],
    ['the url-safe alphabet', keyWithUrlUnsafeCharacters().replaceAll('+', '-').replaceAll('/', '_')],
  ]
  it.each(cases)('refuses a key with %s, naming the variable and never the value', (_label, text) => {
    const problems = problemsWithKey(text)
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^SP_CONNECT_ENCRYPTION_KEYS /)
    expect(problems[0]).toContain('"k1"')
    if (text.trim().length > 4) expect(problems.join('\n')).not.toContain(text.trim())
  })

  it('the keyring itself refuses degenerate key bytes', () => {
    expect(() => new Keyring([{ id: 'k1', key: new Uint8Array(32) }])).toThrow(/all zero/)
    expect(() => new Keyring([{ id: 'k1', key: new Uint8Array(32).fill(9) }])).toThrow(/distinct/)
    expect(new Keyring([{ id: 'k1', key: randomBytes(32) }]).primaryKeyId).toBe('k1')
  })
})

describe('webhook secret', () => {
  const withSecret = (secret: string) => ({
    ...base,
    SP_CONNECT_ENCRYPTION_KEYS: `k1:${generateKeyMaterial()}`,
    SP_CONNECT_WEBHOOK_URLS: 'https://hooks.example.com/sp-connect',
    SP_CONNECT_WEBHOOK_SECRET: secret,
  })

  it('refuses a secret of one repeated character or a short pattern, naming only the variable', () => {
    for (const secret of ['a'.repeat(40), 'ab'.repeat(20), '0123'.repeat(10)]) {
      let problems: readonly string[] = []
      try {
        loadConfigFromEnv(withSecret(secret))
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error
        problems = error.problems
      }
      expect(problems).toEqual(['SP_CONNECT_WEBHOOK_SECRET must have at least 8 distinct characters'])
      expect(problems.join('\n')).not.toContain(secret)
    }
  })

  it('accepts a random secret', () => {
    const config = loadConfigFromEnv(withSecret(randomBytes(32).toString('hex')))
    expect(config.webhooks.secret).not.toBeNull()
  })
})
