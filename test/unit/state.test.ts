import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { validateReturnTo } from '../../src/core/authorization/return-to.ts'
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
  const policy = { publicUrl: 'https://connect.example.com', allowedOrigins: ['https://app.example.com'] }

  it('stores own paths and allowed origins as the absolute URL a browser resolves them to', () => {
    expect(validateReturnTo('/done?x=1', policy)).toBe('https://connect.example.com/done?x=1')
    expect(validateReturnTo('https://app.example.com/after', policy)).toBe('https://app.example.com/after')
    // Dot segments are resolved the browser's way; what is stored stays on our origin.
    expect(validateReturnTo('/a/../b', policy)).toBe('https://connect.example.com/b')
    expect(validateReturnTo('/a/..//evil.example/x', policy)).toBe(
      'https://connect.example.com//evil.example/x',
    )
  })

  it.each([
    '//evil.example/x',
    '/\\evil.example',
    '\\\\evil.example',
    'https://evil.example/',
    'https://app.example.com.evil.example/',
    'https://user:pw@app.example.com/',
    'https://app.example.com/#frag',
    'javascript:alert(1)',
    'data:text/html,x',
    '/a\nb',
    '/a\tb',
    ' https://evil.example',
    'x'.repeat(3000),
    '',
  ])('refuses %j', (value) =>
    expect(() => validateReturnTo(value, policy)).toThrow(
      expect.objectContaining({ code: 'invalid_request' }),
    ),
  )

  it('never returns a value that resolves off the allowed origins', () => {
    const probes = ['/./x', '/..', '/../..//evil.example', '/%2e%2e//evil.example', '/.%2e//evil.example']
    for (const probe of probes) {
      const stored = validateReturnTo(probe, policy)
      expect(new URL(stored).origin).toBe('https://connect.example.com')
      // What the landing redirect sends is this absolute URL; a browser resolves it to the same origin.
      expect(new URL(stored, 'https://elsewhere.example').origin).toBe('https://connect.example.com')
    }
  })
})
