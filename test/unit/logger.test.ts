/**
 * The production logger's redaction goes by exact path: secrets are replaced wherever they sit (top level, one
 * object down, request headers), while our error codes (`code`, `errorCode`) stay readable for alerts.
 */
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { requestContextLogger, runInRequestContext } from '../../src/core/request-context.ts'
import { createLogger, REDACTED_CONTAINERS, SECRET_FIELDS } from '../../src/logger.ts'

function capture() {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  return { lines, logger: createLogger('debug', stream) }
}

describe('createLogger', () => {
  it('keeps our error codes readable', () => {
    const { lines, logger } = capture()
    logger.warn(
      { code: 'lwa_invalid_client', errorCode: 'decryption_failed', nested: { code: 'x' } },
      'failed',
    )
    expect(lines[0]).toMatchObject({
      code: 'lwa_invalid_client',
      errorCode: 'decryption_failed',
      nested: { code: 'x' },
    })
  })

  it('redacts every secret field at the top level and inside the named containers (headers, body, …)', () => {
    const { lines, logger } = capture()
    const secrets = Object.fromEntries(SECRET_FIELDS.map((f) => [f, `CANARY-${f}`]))
    logger.info({
      ...secrets,
      ...Object.fromEntries(REDACTED_CONTAINERS.filter((c) => !c.includes('.')).map((c) => [c, secrets])),
      req: { headers: { authorization: 'CANARY-h', cookie: 'CANARY-c' } },
      response: { headers: { 'set-cookie': 'CANARY-s' } },
    })
    const text = JSON.stringify(lines)
    expect(text).not.toContain('CANARY')
    expect(lines[0]).toMatchObject({
      refresh_token: '[redacted]',
      body: { spapi_oauth_code: '[redacted]' },
    })
  })

  it('adds the request id to lines written during a request, keeping an upstream one aside', () => {
    const { lines, logger } = capture()
    const withIds = requestContextLogger(logger)
    withIds.info({ outside: true })
    runInRequestContext({ requestId: 'req-1' }, () => {
      withIds.debug({ a: 1 })
      withIds.info({ requestId: 'amzn-9' })
    })
    expect(lines[0]).not.toHaveProperty('requestId')
    expect(lines[1]).toMatchObject({ a: 1, requestId: 'req-1' })
    expect(lines[2]).toMatchObject({ requestId: 'req-1', upstreamRequestId: 'amzn-9' })
  })
})
