import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LwaError, type LwaErrorCode, OAUTH_ERROR_CODES } from '../../src/core/lwa/errors.ts'
import { MAX_RESPONSE_BYTES, processTokenResponse } from '../../src/core/lwa/response.ts'
import { type GrantType, MAX_EXPIRES_IN_SECONDS } from '../../src/core/lwa/types.ts'

const JSON_TYPE = 'application/json;charset UTF-8' // what LWA really sends
const ACCESS = 'Atza|IwEBIExampleAccessToken0123'
const REFRESH = 'Atzr|IwEBIExampleRefreshToken0123'
const GRANTS: readonly GrantType[] = ['authorization_code', 'refresh_token', 'client_credentials']

function response(
  body: BodyInit | null,
  init: { status?: number; headers?: Record<string, string> } = {},
): Response {
  return new Response(body, {
    status: init.status ?? 200,
    headers: { 'content-type': JSON_TYPE, ...init.headers },
  })
}

function json(value: unknown, init: { status?: number; headers?: Record<string, string> } = {}): Response {
  return response(JSON.stringify(value), init)
}

const success = (extra: Record<string, unknown> = {}) => ({
  access_token: ACCESS,
  refresh_token: REFRESH,
  token_type: 'bearer',
  expires_in: 3600,
  ...extra,
})

async function rejection(promise: Promise<unknown>): Promise<LwaError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!(error instanceof LwaError)) throw new Error(`expected an LwaError, got ${String(error)}`)
  return error
}

describe('processTokenResponse() success', () => {
  it('returns the tokens of an authorization_code response', async () => {
    const tokens = await processTokenResponse(json(success()), 'authorization_code')
    expect(tokens).toEqual({
      accessToken: ACCESS,
      tokenType: 'bearer',
      expiresIn: 3600,
      refreshToken: REFRESH,
    })
    expect(Object.isFrozen(tokens)).toBe(true)
  })

  it('accepts token_type in any case, extra fields, and JSON media types with parameters', async () => {
    for (const [tokenType, contentType] of [
      ['Bearer', 'application/json'],
      ['BEARER', 'application/json; charset=utf-8'],
      ['bEaReR', 'Application/JSON'],
    ] as const) {
      const tokens = await processTokenResponse(
        json(success({ token_type: tokenType, scope: 'x', id_token: 'y' }), {
          headers: { 'content-type': contentType },
        }),
        'refresh_token',
      )
      expect(tokens.tokenType).toBe('bearer')
    }
  })

  it('returns refreshToken null for a refresh without one, and the new one when LWA sends it', async () => {
    const without = await processTokenResponse(json(success({ refresh_token: undefined })), 'refresh_token')
    expect(without.refreshToken).toBeNull()
    const withOne = await processTokenResponse(json(success()), 'refresh_token')
    expect(withOne.refreshToken).toBe(REFRESH)
  })

  it('ignores any refresh_token on client_credentials, even a malformed one', async () => {
    for (const refresh of [REFRESH, null, 42, '']) {
      const tokens = await processTokenResponse(
        json(success({ refresh_token: refresh })),
        'client_credentials',
      )
      expect(tokens.refreshToken).toBeNull()
    }
  })

  it('floors fractional lifetimes and clamps anything above an hour to 3600 (issue 8)', async () => {
    expect(MAX_EXPIRES_IN_SECONDS).toBe(3600)
    const cases: Array<[number, number]> = [
      [3599.7, 3599],
      [1, 1],
      [3600, 3600],
      [3601, 3600],
      [86_400, 3600],
      [86_401, MAX_EXPIRES_IN_SECONDS],
      [1e12, MAX_EXPIRES_IN_SECONDS],
      [Number.MAX_VALUE, MAX_EXPIRES_IN_SECONDS],
    ]
    for (const [input, expected] of cases) {
      const tokens = await processTokenResponse(json(success({ expires_in: input })), 'refresh_token')
      expect(tokens.expiresIn).toBe(expected)
    }
  })

  it('accepts an access token of exactly 2048 bytes', async () => {
    const accessToken = `Atza|${'a'.repeat(2043)}`
    const tokens = await processTokenResponse(json(success({ access_token: accessToken })), 'refresh_token')
    expect(tokens.accessToken).toBe(accessToken)
  })
})

describe('processTokenResponse() malformed success bodies', () => {
  const cases: Array<[string, () => Response, GrantType?]> = [
    ['non-JSON text', () => response('access_token=Atza|x&expires_in=3600')],
    ['truncated JSON', () => response('{"access_token":"Atza|x",')],
    ['empty body', () => response('')],
    ['no body', () => response(null)],
    ['JSON array', () => json([success()])],
    ['JSON null', () => json(null)],
    ['JSON string', () => json(ACCESS)],
    ['JSON number', () => json(3600)],
    [
      'HTML page as text/html',
      () => response('<html><body>Sign in</body></html>', { headers: { 'content-type': 'text/html' } }),
    ],
    ['HTML page labelled JSON', () => response('<!DOCTYPE html><html></html>')],
    [
      'JSON as text/plain',
      () => response(JSON.stringify(success()), { headers: { 'content-type': 'text/plain' } }),
    ],
    ['no Content-Type', () => new Response(new Blob([JSON.stringify(success())]))],
    ['missing access_token', () => json(success({ access_token: undefined }))],
    ['empty access_token', () => json(success({ access_token: '' }))],
    ['numeric access_token', () => json(success({ access_token: 12345 }))],
    ['access_token over 2048 bytes', () => json(success({ access_token: `Atza|${'a'.repeat(2044)}` }))],
    ['access_token with a space', () => json(success({ access_token: 'Atza|abc def' }))],
    ['access_token with CR LF', () => json(success({ access_token: 'Atza|abc\r\nX-Evil: 1' }))],
    ['access_token with non-ASCII', () => json(success({ access_token: 'Atza|abcé' }))],
    ['missing token_type', () => json(success({ token_type: undefined }))],
    ['token_type mac', () => json(success({ token_type: 'mac' }))],
    ['token_type bearer with spaces', () => json(success({ token_type: ' bearer ' }))],
    ['token_type number', () => json(success({ token_type: 1 }))],
    ['missing expires_in', () => json(success({ expires_in: undefined }))],
    ['expires_in 0', () => json(success({ expires_in: 0 }))],
    ['expires_in -1', () => json(success({ expires_in: -1 }))],
    ['expires_in 0.5', () => json(success({ expires_in: 0.5 }))],
    ['expires_in "3600"', () => json(success({ expires_in: '3600' }))],
    ['expires_in null (NaN serialised)', () => json(success({ expires_in: Number.NaN }))],
    [
      'expires_in NaN literal',
      () => response(`{"access_token":"${ACCESS}","token_type":"bearer","expires_in":NaN}`),
    ],
    [
      'expires_in Infinity (1e999)',
      () => response(`{"access_token":"${ACCESS}","token_type":"bearer","expires_in":1e999}`),
    ],
    ['expires_in true', () => json(success({ expires_in: true }))],
    [
      'missing refresh_token on a code exchange',
      () => json(success({ refresh_token: undefined })),
      'authorization_code',
    ],
    [
      'null refresh_token on a code exchange',
      () => json(success({ refresh_token: null })),
      'authorization_code',
    ],
    ['null refresh_token on a refresh', () => json(success({ refresh_token: null })), 'refresh_token'],
    ['empty refresh_token on a refresh', () => json(success({ refresh_token: '' })), 'refresh_token'],
    ['refresh_token over 2048 bytes', () => json(success({ refresh_token: `Atzr|${'r'.repeat(2044)}` }))],
    ['invalid UTF-8', () => response(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]))],
    ['oversized body', () => json(success({ padding: 'x'.repeat(MAX_RESPONSE_BYTES) }))],
    [
      'declared oversized body',
      () => json(success(), { headers: { 'content-length': String(10 * 1024 * 1024) } }),
    ],
    ['201 Created', () => json(success(), { status: 201 })],
  ]

  for (const [name, make, grant] of cases) {
    it(`rejects ${name} as lwa_unexpected_response`, async () => {
      const error = await rejection(processTokenResponse(make(), grant ?? 'authorization_code'))
      expect(error.code).toBe('lwa_unexpected_response')
      expect(error.retryable).toBe(false)
      expect(error.detail).not.toContain(ACCESS)
      expect(error.detail).not.toContain(REFRESH)
    })
  }

  it('names the failing fields, never their values', async () => {
    const error = await rejection(
      processTokenResponse(json(success({ token_type: ACCESS, expires_in: REFRESH })), 'refresh_token'),
    )
    expect(error.detail).toContain('token_type')
    expect(error.detail).toContain('expires_in')
    expect(error.detail).not.toContain('Atz')
  })

  it('rejects a body that was already read', async () => {
    const res = json(success())
    await res.text()
    expect((await rejection(processTokenResponse(res, 'refresh_token'))).code).toBe('lwa_unexpected_response')
  })

  it('rejects redirects, which are never followed, without reading them', async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      const res = response(JSON.stringify(success()), {
        status,
        headers: { location: 'https://evil.example/steal' },
      })
      const error = await rejection(processTokenResponse(res, 'refresh_token'))
      expect(error.code).toBe('lwa_unexpected_response')
      expect(error.httpStatus).toBe(status)
      expect(error.retryable).toBe(false)
      expect(error.detail).toContain('redirect')
      expect(error.detail).not.toContain('evil')
    }
  })
})

describe('processTokenResponse() error bodies', () => {
  // Bodies as LWA sends them (spapi-facts.md §4.4)
  const REQUEST_ID = '5b8a7e2c-0e6d-4f0e-9d1a-3f1b2c3d4e5f'
  interface ErrorBody {
    readonly error?: unknown
    readonly error_description?: string
    readonly error_index?: string
    readonly request_id?: string
    readonly message?: string
  }
  const cases: Array<{
    status: number
    body: ErrorBody
    code: LwaErrorCode
    retryable: boolean
  }> = [
    {
      status: 400,
      body: {
        error_description:
          "The request has an invalid grant parameter : refresh_token. User may have revoked or didn't grant the permission.",
        error: 'invalid_grant',
        error_index: 'IYw5sEg3kDy0Ccw2XsAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        request_id: REQUEST_ID,
      },
      code: 'lwa_invalid_grant',
      retryable: false,
    },
    {
      status: 400,
      body: {
        error_description: 'The request has an invalid grant parameter : code',
        error: 'invalid_grant',
      },
      code: 'lwa_invalid_grant',
      retryable: false,
    },
    {
      status: 401,
      body: { error_description: 'Client authentication failed', error: 'invalid_client' },
      code: 'lwa_invalid_client',
      retryable: false,
    },
    {
      status: 400,
      body: { error_description: 'Not authorized for requested operation', error: 'unauthorized_client' },
      code: 'lwa_unauthorized_client',
      retryable: false,
    },
    {
      status: 400,
      body: { error_description: 'The request has an invalid parameter : code', error: 'invalid_request' },
      code: 'lwa_invalid_request',
      retryable: false,
    },
    {
      status: 400,
      body: { error_description: 'The request has an invalid parameter : scope', error: 'invalid_scope' },
      code: 'lwa_invalid_scope',
      retryable: false,
    },
    {
      status: 401,
      body: { error_description: 'Authorization_server_denied_the_request', error: 'access_denied' },
      code: 'lwa_access_denied',
      retryable: false,
    },
    {
      status: 400,
      body: {
        error_description: 'The authorization grant type is not supported by the authorization server',
        error: 'unsupported_grant_type',
      },
      code: 'lwa_unsupported_grant_type',
      retryable: false,
    },
    {
      status: 500,
      body: { error_description: 'Internal error', error: 'server_error' },
      code: 'lwa_server_error',
      retryable: true,
    },
    {
      status: 503,
      body: { error_description: 'Service unavailable', error: 'temporarily_unavailable' },
      code: 'lwa_temporarily_unavailable',
      retryable: true,
    },
    {
      status: 400,
      body: { error_description: 'Service unavailable', error: 'temporarily_unavailable' },
      code: 'lwa_temporarily_unavailable',
      retryable: true,
    },
    { status: 429, body: { error: 'invalid_request' }, code: 'lwa_throttled', retryable: true },
    { status: 400, body: { error: 'something_new' }, code: 'lwa_error', retryable: false },
    { status: 400, body: { error: 'constructor' }, code: 'lwa_error', retryable: false },
    { status: 400, body: { error: '__proto__' }, code: 'lwa_error', retryable: false },
    { status: 502, body: { error: 'something_new' }, code: 'lwa_server_error', retryable: true },
    { status: 400, body: { message: 'not OAuth' }, code: 'lwa_unexpected_response', retryable: false },
    { status: 400, body: { error: 42 }, code: 'lwa_unexpected_response', retryable: false },
  ]

  for (const { status, body, code, retryable } of cases) {
    it(`maps ${status} ${JSON.stringify(body.error)} to ${code}`, async () => {
      const error = await rejection(processTokenResponse(json(body, { status }), 'refresh_token'))
      expect(error).toBeInstanceOf(LwaError)
      expect(error.code).toBe(code)
      expect(error.httpStatus).toBe(status)
      expect(error.retryable).toBe(retryable)
      expect(error.oauthError).toBe(typeof body.error === 'string' ? body.error : undefined)
      if (typeof body.error_description === 'string') expect(error.detail).toContain(body.error_description)
    })
  }

  it('covers every entry of the mapping table', () => {
    const mapped = new Set(cases.map((c) => c.body.error))
    for (const oauthError of Object.keys(OAUTH_ERROR_CODES)) expect(mapped).toContain(oauthError)
  })

  it('keeps request_id and error_index from the body, and falls back to the x-amzn-RequestId header', async () => {
    const first = cases[0]
    if (first === undefined) throw new Error('no cases')
    const fromBody = await rejection(
      processTokenResponse(
        json(first.body, { status: 400, headers: { 'x-amzn-RequestId': 'header-id' } }),
        'refresh_token',
      ),
    )
    expect(fromBody.requestId).toBe(REQUEST_ID)
    expect(fromBody.errorIndex).toBe(first.body.error_index)
    const fromHeader = await rejection(
      processTokenResponse(
        json({ error: 'invalid_grant' }, { status: 400, headers: { 'x-amzn-RequestId': 'header-id' } }),
        'refresh_token',
      ),
    )
    expect(fromHeader.requestId).toBe('header-id')
  })

  it('drops malformed ids instead of logging them', async () => {
    const error = await rejection(
      processTokenResponse(
        json({ error: 'invalid_grant', request_id: 'a\nb', error_index: 'x y' }, { status: 400 }),
        'refresh_token',
      ),
    )
    expect(error.code).toBe('lwa_invalid_grant')
    expect(error.requestId).toBeUndefined()
    expect(error.errorIndex).toBeUndefined()
  })

  it('classifies by status when the body is not OAuth JSON', async () => {
    const html = (status: number) =>
      response('<html><body>Bad Gateway</body></html>', { status, headers: { 'content-type': 'text/html' } })
    const expectations: Array<[Response, LwaErrorCode, boolean]> = [
      [html(502), 'lwa_server_error', true],
      [html(503), 'lwa_server_error', true],
      [response(null, { status: 500 }), 'lwa_server_error', true],
      [response(null, { status: 429 }), 'lwa_throttled', true],
      [html(404), 'lwa_unexpected_response', false],
      [html(400), 'lwa_unexpected_response', false],
      [response('x'.repeat(MAX_RESPONSE_BYTES + 1), { status: 503 }), 'lwa_server_error', true],
    ]
    for (const [res, code, retryable] of expectations) {
      const error = await rejection(processTokenResponse(res, 'client_credentials'))
      expect([error.code, error.retryable]).toEqual([code, retryable])
      expect(error.oauthError).toBeUndefined()
    }
  })

  it('parses Retry-After into retryAfterMs and retryAfterSeconds', async () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0)
    const seconds = await rejection(
      processTokenResponse(
        response(null, { status: 429, headers: { 'retry-after': '7' } }),
        'refresh_token',
        {
          now: () => now,
        },
      ),
    )
    expect(seconds.retryAfterMs).toBe(7000)
    expect(seconds.retryAfterSeconds).toBe(7)
    const date = await rejection(
      processTokenResponse(
        response(null, { status: 503, headers: { 'retry-after': 'Thu, 01 Jan 2026 12:00:02 GMT' } }),
        'refresh_token',
        { now: () => now + 500 },
      ),
    )
    expect(date.retryAfterMs).toBe(1500)
    expect(date.retryAfterSeconds).toBe(2)
    const garbage = await rejection(
      processTokenResponse(
        response(null, { status: 429, headers: { 'retry-after': 'soon' } }),
        'refresh_token',
      ),
    )
    expect(garbage.retryAfterMs).toBeUndefined()
    expect(garbage.retryAfterSeconds).toBeUndefined()
  })

  it('keeps error_description printable, short and free of token-shaped text', async () => {
    const error = await rejection(
      processTokenResponse(
        json(
          {
            error: 'invalid_grant',
            error_description: `bad token ${REFRESH} secret amzn1.oa2-cs.v1.abcdef\r\nInjected: header ${'y'.repeat(500)}`,
          },
          { status: 400 },
        ),
        'refresh_token',
      ),
    )
    expect(error.detail).not.toContain(REFRESH)
    expect(error.detail).not.toContain('amzn1.oa2-cs')
    expect(error.detail).not.toMatch(/[\r\n]/)
    expect(error.detail).toContain('[redacted]')
    const description = error.detail?.split('invalid_grant: ')[1] ?? ''
    expect([...description].length).toBeLessThanOrEqual(300)
  })
})

describe('processTokenResponse() properties', () => {
  const field = fc.oneof(
    fc.string(),
    fc.constant(ACCESS),
    fc.constantFrom('bearer', 'Bearer', 'mac', ''),
    fc.double(),
    fc.integer(),
    fc.constantFrom(0, -1, 1e12, 3600, 0.5, 1),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 2 }),
    fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
  )
  const tokenBody = fc.record(
    {
      access_token: field,
      token_type: field,
      expires_in: field,
      refresh_token: field,
      error: fc.oneof(fc.constantFrom(...Object.keys(OAUTH_ERROR_CODES), 'constructor', '__proto__'), field),
      error_description: field,
      request_id: field,
    },
    { requiredKeys: [] },
  )
  const bodyText = fc.oneof(
    tokenBody.map((body) => JSON.stringify(body)),
    fc.jsonValue().map((value) => JSON.stringify(value)),
    fc.string(),
    fc.constant('<html></html>'),
  )
  const status = fc.oneof(
    fc.constantFrom(200, 200, 200, 400, 401, 429, 500, 503, 302, 307),
    fc.integer({ min: 200, max: 599 }),
  )
  const contentType = fc.constantFrom(
    JSON_TYPE,
    'application/json',
    'text/html',
    'text/plain',
    'application/problem+json',
  )
  const retryAfter = fc.option(
    fc.oneof(
      fc.string(),
      fc.nat().map(String),
      fc.date().map((d) => d.toUTCString()),
    ),
    {
      nil: undefined,
    },
  )

  it('never throws anything but LwaError and never returns a non-positive or unclamped lifetime', async () => {
    await fc.assert(
      fc.asyncProperty(
        bodyText,
        status,
        contentType,
        retryAfter,
        fc.constantFrom(...GRANTS),
        async (text, code, type, after, grant) => {
          const headers: Record<string, string> = { 'content-type': type }
          if (after !== undefined) headers['retry-after'] = after
          let tokens: Awaited<ReturnType<typeof processTokenResponse>>
          try {
            // Null-body statuses cannot carry a body in a Response
            const body = [204, 205, 304].includes(code) ? null : text
            tokens = await processTokenResponse(response(body, { status: code, headers }), grant)
          } catch (error) {
            expect(error).toBeInstanceOf(LwaError)
            if (error instanceof LwaError) {
              expect(error.code.startsWith('lwa_')).toBe(true)
              if (error.retryAfterMs !== undefined) expect(error.retryAfterMs).toBeGreaterThanOrEqual(0)
            }
            return
          }
          expect(code).toBe(200)
          expect(Number.isInteger(tokens.expiresIn)).toBe(true)
          expect(tokens.expiresIn).toBeGreaterThanOrEqual(1)
          expect(tokens.expiresIn).toBeLessThanOrEqual(MAX_EXPIRES_IN_SECONDS)
          expect(tokens.accessToken.length).toBeGreaterThan(0)
          expect(tokens.tokenType).toBe('bearer')
          if (grant === 'authorization_code') expect(tokens.refreshToken).not.toBeNull()
          if (grant === 'client_credentials') expect(tokens.refreshToken).toBeNull()
        },
      ),
      { numRuns: 500 },
    )
  })

  it('accepts every well-formed success and returns its values', async () => {
    const printable = fc.string({
      unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
      minLength: 1,
      maxLength: 2048,
    })
    await fc.assert(
      fc.asyncProperty(
        printable,
        printable,
        fc.double({ min: 1, max: 1e15, noNaN: true }),
        fc.constantFrom('bearer', 'Bearer', 'BEARER'),
        async (access, refresh, expiresIn, tokenType) => {
          const tokens = await processTokenResponse(
            json({
              access_token: access,
              refresh_token: refresh,
              token_type: tokenType,
              expires_in: expiresIn,
            }),
            'authorization_code',
          )
          expect(tokens).toEqual({
            accessToken: access,
            tokenType: 'bearer',
            expiresIn: Math.min(Math.floor(expiresIn), MAX_EXPIRES_IN_SECONDS),
            refreshToken: refresh,
          })
        },
      ),
      { numRuns: 200 },
    )
  })
})
