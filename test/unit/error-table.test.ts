/**
 * The one error table: HTTP status, message, CLI exit code, retryable and app-wide flags are columns of
 * `ERROR_CODES`, read through `exitCodeOf`, `isRetryable` and `isAppWide`, with documented defaults.
 */
import { describe, expect, it } from 'vitest'
import { exitCodeFor } from '../../src/cli/exit-codes.ts'
import { ConfigError } from '../../src/config.ts'
import { LwaError, type LwaErrorCode } from '../../src/core/lwa/errors.ts'
import {
  ERROR_CODES,
  type ErrorCode,
  EXIT_CODES,
  exitCodeOf,
  isAppWide,
  isRetryable,
} from '../../src/domain/errors.ts'

const codes = Object.keys(ERROR_CODES) as ErrorCode[]

describe('ERROR_CODES columns', () => {
  it('gives every code an exit code the CLI uses: a known, non-zero sysexits-style value', () => {
    const known = new Set<number>(Object.values(EXIT_CODES))
    for (const code of codes) {
      const exit = exitCodeOf(code)
      expect(known.has(exit), code).toBe(true)
      expect(exit, code).not.toBe(EXIT_CODES.ok)
      expect(exitCodeFor(code), code).toBe(exit)
    }
  })

  it('defaults: exit 1, not retryable, not app-wide', () => {
    expect(exitCodeOf('internal')).toBe(1)
    expect(isRetryable('internal')).toBe(false)
    expect(isAppWide('internal')).toBe(false)
    expect(exitCodeOf('decryption_failed')).toBe(1)
  })

  it('keeps the exit codes scripts rely on', () => {
    expect(exitCodeOf('invalid_request')).toBe(2)
    expect(exitCodeOf('connection_not_found')).toBe(3)
    expect(exitCodeOf('connection_needs_reauthorization')).toBe(4)
    expect(exitCodeOf('lwa_invalid_grant')).toBe(4)
    expect(exitCodeOf('store_unavailable')).toBe(69)
    expect(exitCodeOf('lwa_unreachable')).toBe(69)
    expect(exitCodeOf('config_invalid')).toBe(78)
    expect(exitCodeOf('database_unusable')).toBe(78)
  })

  it('marks transient failures retryable, and every retryable code answers 429, 503 or 504 with exit 69', () => {
    for (const code of codes) {
      if (!isRetryable(code)) continue
      // 429: our own throttling (wait and retry); 504: SP-API did not answer in time; 503 otherwise.
      expect([429, 503, 504], code).toContain(ERROR_CODES[code].status)
      expect(exitCodeOf(code), code).toBe(EXIT_CODES.unavailable)
    }
    expect(isRetryable('store_unavailable')).toBe(true)
    expect(isRetryable('lease_timeout')).toBe(true)
    expect(isRetryable('lwa_invalid_grant')).toBe(false)
  })

  it('decides whether an LWA error is retryable (the LWA client reads the column)', () => {
    for (const code of codes.filter((c) => c.startsWith('lwa_'))) {
      expect(new LwaError(code as LwaErrorCode).retryable).toBe(isRetryable(code))
    }
    expect(isRetryable('lwa_server_error')).toBe(true)
    expect(isRetryable('lwa_invalid_grant')).toBe(false)
  })

  it('marks the application’s rejected credentials app-wide, and nothing else', () => {
    expect(codes.filter(isAppWide).sort()).toEqual(['lwa_invalid_client', 'lwa_unauthorized_client'])
  })

  it('config errors are the config_invalid row, with their list of problems', () => {
    const error = new ConfigError(['DATABASE_URL is required'])
    expect(error.code).toBe('config_invalid')
    expect(exitCodeOf(error.code)).toBe(78)
    expect(error.problems).toEqual(['DATABASE_URL is required'])
  })
})
