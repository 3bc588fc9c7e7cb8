import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { validateReturnTo } from '../../src/core/authorization/connect-sessions.ts'
import {
  generateBrowserBinding,
  generateState,
  hashesEqual,
  hashSecretValue,
  isWellFormedRandomValue,
} from '../../src/core/authorization/state.ts'

const rb = (n: number) => new Uint8Array(randomBytes(n))

describe('state values', () => {
  it('carry 256 random bits as 43 base64url characters and never repeat', () => {
    const values = new Set(Array.from({ length: 1000 }, () => generateState(rb)))
    expect(values.size).toBe(1000)
    for (const value of values) expect(isWellFormedRandomValue(value)).toBe(true)
    expect(isWellFormedRandomValue(generateBrowserBinding(rb))).toBe(true)
  })

  it('are stored as a hash that differs from the value', () => {
    const state = generateState(rb)
    const hash = hashSecretValue(state)
    expect(hash).not.toContain(state)
    expect(hashSecretValue(state)).toBe(hash)
  })

  it('match only exactly: any altered value has another hash', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 64 }),
        fc.string({ minLength: 1, maxLength: 4 }),
        (value, extra) => {
          expect(hashesEqual(hashSecretValue(value), hashSecretValue(value))).toBe(true)
          expect(hashesEqual(hashSecretValue(value), hashSecretValue(value + extra))).toBe(false)
        },
      ),
    )
  })

  it.each([
    '',
    'short',
    `${'a'.repeat(42)}=`,
    `${'a'.repeat(44)}`,
    `${'a'.repeat(42)}/`,
    `${'a'.repeat(42)} `,
  ])('rejects the malformed value %j', (value) => expect(isWellFormedRandomValue(value)).toBe(false))
})

describe('validateReturnTo', () => {
  it('allows own paths and allowed origins', () => {
    expect(validateReturnTo('/done?x=1', [])).toBe('/done?x=1')
    expect(validateReturnTo('https://app.example.com/after', ['https://app.example.com'])).toBe(
      'https://app.example.com/after',
    )
  })

  it.each([
    '//evil.example/x',
    '/\\evil.example',
    'https://evil.example/',
    'javascript:alert(1)',
    '/a\nb',
    'x'.repeat(3000),
  ])('refuses %j', (value) =>
    expect(() => validateReturnTo(value, ['https://app.example.com'])).toThrow(
      expect.objectContaining({ code: 'invalid_request' }),
    ),
  )
})
