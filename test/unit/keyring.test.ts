import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ciphertextKeyId, Keyring, parseKeyringSpec } from '../../src/core/crypto/keyring.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'

const key = (id: string) => ({ id, key: new Uint8Array(randomBytes(32)) })
const context = { table: 'connections', rowId: 'con_1', column: 'refresh_token' }

describe('Keyring', () => {
  it('round-trips any text and never repeats a ciphertext', () => {
    const ring = new Keyring([key('k1')])
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (plaintext) => {
        const a = ring.encrypt(plaintext, context)
        const b = ring.encrypt(plaintext, context)
        expect(a).not.toBe(b)
        expect(ring.decrypt(a, context)).toBe(plaintext)
      }),
    )
  })

  it('puts the primary key id in the ciphertext and no plaintext', () => {
    const ring = new Keyring([key('new'), key('old')])
    const sealed = ring.encrypt('Atzr|secret-refresh-token', context)
    expect(ciphertextKeyId(sealed)).toBe('new')
    expect(sealed).not.toContain('secret-refresh-token')
    expect(sealed.split('.')).toHaveLength(5)
  })

  it('decrypts with an older key still in the ring, and fails closed as key_unavailable without it', () => {
    const old = key('old')
    const sealed = new Keyring([old]).encrypt('token', context)
    expect(new Keyring([key('new'), old]).decrypt(sealed, context)).toBe('token')
    try {
      new Keyring([key('new')]).decrypt(sealed, context)
      expect.unreachable()
    } catch (error) {
      expect(isSpConnectError(error, 'key_unavailable')).toBe(true)
    }
  })

  it.each([
    ['another row', { ...context, rowId: 'con_2' }],
    ['another column', { ...context, column: 'access_token' }],
    ['another table', { ...context, table: 'app_secrets' }],
  ])('rejects a ciphertext moved to %s', (_name, moved) => {
    const ring = new Keyring([key('k1')])
    const sealed = ring.encrypt('token', context)
    expect(() => ring.decrypt(sealed, moved)).toThrow(expect.objectContaining({ code: 'decryption_failed' }))
  })

  it('detects tampering with any part of the ciphertext', () => {
    const ring = new Keyring([key('k1')])
    const sealed = ring.encrypt('a refresh token of some length', context)
    const parts = sealed.split('.')
    for (const index of [2, 3, 4]) {
      const part = parts[index] ?? ''
      const flipped = Buffer.from(part, 'base64url')
      flipped[0] = (flipped[0] ?? 0) ^ 1
      const tampered = [...parts]
      tampered[index] = flipped.toString('base64url')
      expect(() => ring.decrypt(tampered.join('.'), context)).toThrow(
        expect.objectContaining({ code: 'decryption_failed' }),
      )
    }
    expect(() => ring.decrypt('garbage', context)).toThrow(
      expect.objectContaining({ code: 'decryption_failed' }),
    )
    expect(() => ring.decrypt(`v2${sealed.slice(2)}`, context)).toThrow(
      expect.objectContaining({ code: 'decryption_failed' }),
    )
  })

  it('refuses bad rings', () => {
    expect(() => new Keyring([])).toThrow(/at least one key/)
    expect(() => new Keyring([{ id: 'k', key: new Uint8Array(16) }])).toThrow(/32 bytes/)
    expect(() => new Keyring([key('k'), key('k')])).toThrow(/twice/)
    expect(() => new Keyring([key('bad id')])).toThrow(/Key id/)
  })

  it('keeps key material out of inspection and errors', () => {
    const material = randomBytes(32)
    const ring = new Keyring([{ id: 'k1', key: new Uint8Array(material) }])
    const hex = material.toString('hex')
    expect(inspect(ring, { showHidden: true, depth: 5 })).not.toContain(
      material.toString('base64').slice(0, 12),
    )
    expect(JSON.stringify(ring)).not.toContain(hex)
  })

  it('parses id:base64 specs, primary first', () => {
    const a = randomBytes(32).toString('base64')
    const b = randomBytes(32).toString('base64')
    const keys = parseKeyringSpec(` k2:${a} , k1:${b} `)
    expect(keys.map((k) => k.id)).toEqual(['k2', 'k1'])
    expect(Buffer.from(keys[0]?.key ?? []).toString('base64')).toBe(a)
    expect(() => parseKeyringSpec('nocolon')).toThrow(/id:base64key/)
  })
})
