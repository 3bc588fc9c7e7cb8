/**
 * Operator password hashing (src/core/access/passwords.ts) and the sign-in lockout (sign-in-throttle.ts).
 */
import { scryptSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  dummyHash,
  hashPassword,
  passwordAlgorithm,
  passwordProblem,
  verifyPassword,
} from '../../src/core/access/passwords.ts'
import { SignInThrottle } from '../../src/core/access/sign-in-throttle.ts'

describe('operator passwords', () => {
  it('hashes with Argon2id in this Node, as a PHC string with a fresh salt, and verifies it', async () => {
    expect(passwordAlgorithm()).toBe('argon2id')
    const a = await hashPassword('correct horse battery')
    const b = await hashPassword('correct horse battery')
    expect(a).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
    expect(a).not.toBe(b)
    expect(await verifyPassword('correct horse battery', a)).toBe(true)
    expect(await verifyPassword('correct horse batterY', a)).toBe(false)
    expect(await verifyPassword('', a)).toBe(false)
  })

  it('verifies scrypt hashes (Node without Argon2) from their own parameters', async () => {
    const salt = Buffer.from('0123456789abcdef')
    const hash = scryptSync('a scrypt password', salt, 32, {
      N: 2 ** 14,
      r: 8,
      p: 1,
      maxmem: 64 * 1024 * 1024,
    })
    const b64 = (x: Buffer) => x.toString('base64').replace(/=+$/, '')
    const stored = `$scrypt$ln=14,r=8,p=1$${b64(salt)}$${b64(hash)}`
    expect(await verifyPassword('a scrypt password', stored)).toBe(true)
    expect(await verifyPassword('another password', stored)).toBe(false)
  })

  it('answers false for a malformed hash or an overlong password, never throwing', async () => {
    expect(await verifyPassword('whatever password', 'not a hash')).toBe(false)
    expect(await verifyPassword('x'.repeat(5000), await dummyHash())).toBe(false)
    expect(await dummyHash()).toMatch(/^\$argon2id\$/)
  })

  it('refuses passwords under 12 characters (counted as characters, not bytes)', () => {
    expect(passwordProblem('elevenchars')).toMatch(/at least 12/)
    expect(passwordProblem('twelve chars')).toBeUndefined()
    expect(passwordProblem('ééééééééééé')).toMatch(/at least 12/)
    expect(passwordProblem('x'.repeat(2000))).toMatch(/too long/)
  })
})

describe('SignInThrottle', () => {
  it('locks a key after maxFailures within the window, until the window passes; reset forgets', () => {
    const throttle = new SignInThrottle({ maxFailures: 3, windowMs: 1000 })
    expect(throttle.fail('a', 0)).toBe(false)
    expect(throttle.fail('a', 10)).toBe(false)
    expect(throttle.lockedUntil('a', 10)).toBeUndefined()
    expect(throttle.fail('a', 20)).toBe(true)
    expect(throttle.lockedUntil('a', 500)).toBe(1020)
    expect(throttle.lockedUntil('b', 500)).toBeUndefined()
    expect(throttle.lockedUntil('a', 1020)).toBeUndefined()
    throttle.fail('b', 0)
    throttle.fail('b', 0)
    throttle.reset('b')
    expect(throttle.fail('b', 1)).toBe(false)
  })

  it('starts counting again after a window without failures', () => {
    const throttle = new SignInThrottle({ maxFailures: 2, windowMs: 100 })
    throttle.fail('a', 0)
    expect(throttle.fail('a', 150)).toBe(false)
  })

  it('remembers at most maxKeys keys, dropping the oldest', () => {
    const throttle = new SignInThrottle({ maxFailures: 1, windowMs: 1000, maxKeys: 2 })
    throttle.fail('a', 0)
    throttle.fail('b', 0)
    throttle.fail('c', 0)
    expect(throttle.lockedUntil('a', 1)).toBeUndefined()
    expect(throttle.lockedUntil('b', 1)).toBe(1000)
    expect(throttle.lockedUntil('c', 1)).toBe(1000)
  })
})
