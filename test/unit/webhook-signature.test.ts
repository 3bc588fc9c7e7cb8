import { createHmac } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  computeSignature,
  parseSignatureHeader,
  SIGNATURE_HEADER,
  signWebhook,
  verifyWebhook,
} from '../../src/core/events/signature.ts'

const SECRET = 'whsec_test_0123456789abcdef0123456789abcdef'
const BODY = '{"id":"evt_1","type":"connection.created"}'
const T = 1_700_000_000

/** The receiver's side, written independently of the code under test. */
function independentHmac(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(Buffer.from(`${timestamp}.${body}`, 'utf8'))
    .digest('hex')
}

describe('signWebhook()', () => {
  it('matches vectors computed outside Node (openssl dgst -sha256 -hmac)', () => {
    expect(signWebhook(SECRET, T, BODY)).toBe(
      't=1700000000,v1=e7805039613719ebd46fc20a1eb4d3fbf2ec10e5aa9a99b1d45f5ffaedb7219b',
    )
    expect(signWebhook('k', T, '')).toBe(
      't=1700000000,v1=5c2999a43333a6877f49c8003f235c4f6de40f85b1b7414b70bd470a8db53d97',
    )
    // UTF-8 bytes of the body are signed, not UTF-16 code units
    expect(signWebhook('k', T, '{"n":"é✓"}')).toBe(
      't=1700000000,v1=8818df87cbad9c583a7b7d9913057071226ad17c116a89bf43a7fc2cd7468b21',
    )
  })

  it('matches an independent node:crypto HMAC for any secret, time and body', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 64 }),
        fc.integer({ min: 0, max: 4_102_444_800 }),
        fc.string({ maxLength: 500, unit: 'grapheme' }),
        (secret, timestamp, body) => {
          expect(signWebhook(secret, timestamp, body)).toBe(
            `t=${timestamp},v1=${independentHmac(secret, timestamp, body)}`,
          )
          expect(computeSignature(secret, timestamp, body)).toBe(independentHmac(secret, timestamp, body))
        },
      ),
    )
  })

  it('gives one v1 per secret, in order, for rotation', () => {
    expect(signWebhook(['new-secret', 'old-secret'], T, BODY)).toBe(
      `t=${T},v1=${independentHmac('new-secret', T, BODY)},v1=${independentHmac('old-secret', T, BODY)}`,
    )
  })

  it('refuses an empty secret and a bad timestamp', () => {
    expect(() => signWebhook('', T, BODY)).toThrow(TypeError)
    expect(() => signWebhook([], T, BODY)).toThrow(TypeError)
    expect(() => signWebhook(['ok', ''], T, BODY)).toThrow(TypeError)
    expect(() => signWebhook(SECRET, 1.5, BODY)).toThrow(TypeError)
    expect(() => signWebhook(SECRET, -1, BODY)).toThrow(TypeError)
    expect(() => signWebhook(SECRET, Number.NaN, BODY)).toThrow(TypeError)
  })

  it('names its header', () => {
    expect(SIGNATURE_HEADER).toBe('sp-connect-signature')
  })
})

describe('verifyWebhook()', () => {
  const header = `t=${T},v1=${independentHmac(SECRET, T, BODY)}`

  it('accepts a header made by an independent signer', () => {
    expect(verifyWebhook(SECRET, header, BODY, T)).toBe(true)
  })

  it('rejects a tampered body, timestamp, signature or secret', () => {
    expect(verifyWebhook(SECRET, header, `${BODY} `, T)).toBe(false)
    expect(verifyWebhook(SECRET, header, BODY.replace('evt_1', 'evt_2'), T)).toBe(false)
    const sig = independentHmac(SECRET, T, BODY)
    expect(verifyWebhook(SECRET, `t=${T + 1},v1=${sig}`, BODY, T)).toBe(false)
    const flipped = (sig[0] === '0' ? '1' : '0') + sig.slice(1)
    expect(verifyWebhook(SECRET, `t=${T},v1=${flipped}`, BODY, T)).toBe(false)
    expect(verifyWebhook(`${SECRET}x`, header, BODY, T)).toBe(false)
    expect(verifyWebhook(SECRET.slice(1), header, BODY, T)).toBe(false)
    expect(verifyWebhook('', header, BODY, T)).toBe(false)
  })

  it('accepts timestamps within the tolerance on either side, and no further', () => {
    expect(verifyWebhook(SECRET, header, BODY, T + 300)).toBe(true)
    expect(verifyWebhook(SECRET, header, BODY, T - 300)).toBe(true)
    expect(verifyWebhook(SECRET, header, BODY, T + 301)).toBe(false)
    expect(verifyWebhook(SECRET, header, BODY, T - 301)).toBe(false)
    expect(verifyWebhook(SECRET, header, BODY, T + 3600, 3600)).toBe(true)
    expect(verifyWebhook(SECRET, header, BODY, T + 1, 0)).toBe(false)
    expect(verifyWebhook(SECRET, header, BODY, T, 0)).toBe(true)
    expect(verifyWebhook(SECRET, header, BODY, Number.NaN)).toBe(false)
  })

  it('accepts any of several v1 values and ignores other schemes', () => {
    const good = independentHmac(SECRET, T, BODY)
    const other = independentHmac('another-secret', T, BODY)
    expect(verifyWebhook(SECRET, `t=${T},v1=${other},v1=${good}`, BODY, T)).toBe(true)
    expect(verifyWebhook(SECRET, `t=${T},v1=${good},v1=${other}`, BODY, T)).toBe(true)
    expect(verifyWebhook(SECRET, `v0=abc, t=${T}, v1=${good.toUpperCase()}, v2=zzz`, BODY, T)).toBe(true)
    expect(verifyWebhook(SECRET, `t=${T},v1=${other}`, BODY, T)).toBe(false)
    // The right value under another scheme name is not a v1 signature.
    expect(verifyWebhook(SECRET, `t=${T},v0=${good}`, BODY, T)).toBe(false)
  })

  it('rejects malformed headers without throwing', () => {
    const sig = independentHmac(SECRET, T, BODY)
    for (const bad of [
      '',
      sig,
      `v1=${sig}`,
      `t=${T}`,
      `t=${T},v1=`,
      `t=${T},v1=${sig.slice(1)}`,
      `t=${T},v1=${sig}0`,
      `t=${T},v1=${sig.slice(0, 63)}g`,
      `t=abc,v1=${sig}`,
      `t=-${T},v1=${sig}`,
      `t=${T}.5,v1=${sig}`,
      // two timestamps: ambiguous, so refused
      `t=${T},t=${T},v1=${sig}`,
      `t=1,t=${T},v1=${sig}`,
      '=,=,,',
    ]) {
      expect(verifyWebhook(SECRET, bad, BODY, T), bad).toBe(false)
    }
  })

  it('round-trips whatever is signed, and only that (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 64 }),
        fc.integer({ min: 0, max: 4_102_444_800 }),
        fc.integer({ min: -300, max: 300 }),
        fc.string({ maxLength: 500 }),
        fc.string({ minLength: 1, maxLength: 20 }),
        (secret, timestamp, skew, body, extra) => {
          const signed = signWebhook(secret, timestamp, body)
          expect(verifyWebhook(secret, signed, body, timestamp + skew)).toBe(true)
          expect(verifyWebhook(secret, signed, body + extra, timestamp + skew)).toBe(false)
          expect(verifyWebhook(secret + extra, signed, body, timestamp + skew)).toBe(false)
          expect(verifyWebhook(secret, signed, body, timestamp + 301 + Math.abs(skew))).toBe(false)
        },
      ),
    )
  })
})

describe('parseSignatureHeader()', () => {
  it('reads the timestamp and every v1 value', () => {
    const a = 'a'.repeat(64)
    const b = 'B'.repeat(64)
    expect(parseSignatureHeader(`t=${T},v1=${a},v1=${b}`)).toEqual({
      timestamp: T,
      signatures: [a, b.toLowerCase()],
    })
    expect(parseSignatureHeader(`t=${T}`)).toBeUndefined()
  })
})
