import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import type { Deps, Logger } from '../../src/core/deps.ts'
import { LwaClient } from '../../src/core/lwa/client.ts'
import { LwaError, MAX_CLIENT_RETRY_AFTER_SECONDS } from '../../src/core/lwa/errors.ts'
import { RetryBudget } from '../../src/core/lwa/retry-budget.ts'
import { DEFAULT_RETRY_POLICY, type LwaClientOptions, type LwaCredentials } from '../../src/core/lwa/types.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'

const TOKEN_URL = 'https://api.amazon.com/auth/o2/token'
const NOW = Date.UTC(2026, 4, 17, 10, 30, 0)
// Distinctive values, so a leak anywhere shows up in the secret-leak checks. The client secret has no
// recognisable prefix on purpose: only the client's own redaction can catch it.
const CLIENT_SECRET = 'cs-9f8e7d6c5b4a-TOPSECRET'
const CODE = 'SplxlOCODEsecret42'
const REFRESH = 'Atzr|IwEBRefreshSecret0001'
const ACCESS = 'Atza|IwEBAccessSecret0001'
const CODE_SECRETS = [CODE, 'CODEsecret']
const SECRETS = [
  CLIENT_SECRET,
  REFRESH,
  ACCESS,
  'TOPSECRET',
  'RefreshSecret',
  'AccessSecret',
  ...CODE_SECRETS,
]
const CREDENTIALS: LwaCredentials = {
  clientId: 'amzn1.application-oa2-client.abc123',
  clientSecret: CLIENT_SECRET,
}

interface Recorded {
  readonly url: string
  readonly init: RequestInit
  readonly params: URLSearchParams
  readonly signal: AbortSignal | undefined
}
type Handler = (request: Recorded) => Response | Promise<Response>
interface LogEntry {
  readonly level: string
  readonly obj: object
  readonly msg: string | undefined
}

function setup(
  handlers: readonly Handler[],
  options: Partial<LwaClientOptions> = {},
  deps: Partial<Deps> = {},
) {
  const requests: Recorded[] = []
  const sleeps: number[] = []
  const logs: LogEntry[] = []
  const fetch: typeof globalThis.fetch = async (input, init = {}) => {
    const request: Recorded = {
      url: String(input),
      init,
      params: new URLSearchParams(String(init.body)),
      signal: init.signal ?? undefined,
    }
    // The last handler answers every further request
    const handler = handlers[requests.length] ?? handlers[handlers.length - 1]
    requests.push(request)
    if (handler === undefined) throw new Error('no handler')
    return handler(request)
  }
  const log =
    (level: string) =>
    (obj: object, msg?: string): void => {
      logs.push({ level, obj, msg })
    }
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
  const client = new LwaClient(
    {
      tokenUrl: TOKEN_URL,
      credentials: () => CREDENTIALS,
      // These tests are about one call's retry loop; the shared budget holds only 2 retries since issue 8
      // (retry-budget.test.ts covers it), so give them a larger one unless a test brings its own
      retryBudget: new RetryBudget({ max: 10 }, { now: () => NOW }),
      ...options,
    },
    {
      fetch,
      now: () => NOW,
      randomBytes: (size) => new Uint8Array(size),
      logger,
      sleep: async (ms, signal) => {
        signal?.throwIfAborted()
        sleeps.push(ms)
      },
      random: () => 0.5,
      ...deps,
    },
  )
  return { client, requests, sleeps, logs }
}

const JSON_HEADERS = { 'content-type': 'application/json;charset UTF-8' }
const ok =
  (body: Record<string, unknown> = {}): Handler =>
  () =>
    Response.json(
      { access_token: ACCESS, refresh_token: REFRESH, token_type: 'bearer', expires_in: 3600, ...body },
      { headers: { ...JSON_HEADERS, 'x-amzn-RequestId': 'req-ok-1' } },
    )
const oauthError =
  (status: number, error: string, description = '', headers: Record<string, string> = {}): Handler =>
  () =>
    new Response(JSON.stringify({ error, error_description: description, request_id: 'req-err-1' }), {
      status,
      headers: { ...JSON_HEADERS, ...headers },
    })
const status =
  (code: number, headers: Record<string, string> = {}, body = '<html>error</html>'): Handler =>
  () =>
    new Response(body, { status: code, headers: { 'content-type': 'text/html', ...headers } })
const systemError = (code: string) => Object.assign(new Error(`connect ${code} 52.94.0.1:443`), { code })
const networkError =
  (code: string): Handler =>
  () => {
    throw new TypeError('fetch failed', { cause: systemError(code) })
  }
/** Never answers; rejects when the request's signal aborts, as fetch does. */
const hang: Handler = (request) =>
  new Promise<Response>((_, reject) => {
    request.signal?.addEventListener('abort', () => reject(request.signal?.reason), { once: true })
  })

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error,
  )
}

async function lwaFailure(promise: Promise<unknown>): Promise<LwaError> {
  const error = await failure(promise)
  if (!(error instanceof LwaError)) throw new Error(`expected an LwaError, got ${inspect(error)}`)
  return error
}

describe('LwaClient grants', () => {
  it('exchanges a code and returns both tokens', async () => {
    const { client, requests } = setup([ok()])
    const tokens = await client.exchangeCode(CODE, 'https://app.example/callback')
    expect(tokens).toEqual({
      accessToken: ACCESS,
      tokenType: 'bearer',
      expiresIn: 3600,
      refreshToken: REFRESH,
    })
    expect(requests).toHaveLength(1)
    const [request] = requests
    expect(request?.url).toBe(TOKEN_URL)
    expect(Object.fromEntries(request?.params ?? [])).toEqual({
      grant_type: 'authorization_code',
      code: CODE,
      redirect_uri: 'https://app.example/callback',
      client_id: CREDENTIALS.clientId,
      client_secret: CLIENT_SECRET,
    })
    expect(request?.init.redirect).toBe('manual')
  })

  it('refreshes, with null refreshToken when LWA sends none and no scope in the request', async () => {
    const { client, requests } = setup([ok({ refresh_token: undefined })])
    const tokens = await client.refresh(REFRESH)
    expect(tokens.refreshToken).toBeNull()
    expect(Object.fromEntries(requests[0]?.params ?? [])).toEqual({
      grant_type: 'refresh_token',
      refresh_token: REFRESH,
      client_id: CREDENTIALS.clientId,
      client_secret: CLIENT_SECRET,
    })
    expect(String(requests[0]?.init.body)).toContain('refresh_token=Atzr%7C')
  })

  it('gets a grantless token with space-separated scopes and ignores any refresh token', async () => {
    const { client, requests } = setup([ok()])
    const scope = 'sellingpartnerapi::notifications sellingpartnerapi::client_credential:rotation'
    const tokens = await client.clientCredentials(scope)
    expect(tokens.refreshToken).toBeNull()
    expect(requests[0]?.params.get('scope')).toBe(scope)
    expect(requests[0]?.params.has('refresh_token')).toBe(false)
  })

  it('reads the credentials for every attempt, so a rotated secret applies at once', async () => {
    let secret = 'old-secret-1'
    const { client, requests } = setup([status(500), ok()], {
      credentials: () => {
        const credentials = { clientId: 'id', clientSecret: secret }
        secret = 'new-secret-2'
        return credentials
      },
    })
    await client.refresh(REFRESH)
    expect(requests.map((r) => r.params.get('client_secret'))).toEqual(['old-secret-1', 'new-secret-2'])
  })

  it('rejects empty arguments before sending anything', async () => {
    const { client, requests } = setup([ok()])
    await expect(client.refresh('')).rejects.toThrow(TypeError)
    await expect(client.exchangeCode(' ', 'https://x')).rejects.toThrow(TypeError)
    await expect(client.exchangeCode(CODE, '')).rejects.toThrow(TypeError)
    await expect(client.clientCredentials('')).rejects.toThrow(TypeError)
    expect(requests).toHaveLength(0)
  })

  it('throws config_invalid for empty credentials and does not retry', async () => {
    const { client, requests } = setup([ok()], { credentials: () => ({ clientId: '', clientSecret: 'x' }) })
    const error = await failure(client.refresh(REFRESH))
    expect(isSpConnectError(error, 'config_invalid')).toBe(true)
    expect(requests).toHaveLength(0)
  })

  it('refuses bad options', () => {
    const deps = setup([ok()])
    expect(deps.client).toBeInstanceOf(LwaClient)
    const make = (options: Partial<LwaClientOptions>) => () => setup([ok()], options)
    expect(make({ tokenUrl: 'not a url' })).toThrow(TypeError)
    expect(make({ tokenUrl: 'ftp://api.amazon.com/auth/o2/token' })).toThrow(TypeError)
    expect(make({ tokenUrl: 'https://id:secret@api.amazon.com/auth/o2/token' })).toThrow(TypeError)
    expect(make({ timeoutMs: 0 })).toThrow(TypeError)
    expect(make({ timeoutMs: Number.NaN })).toThrow(TypeError)
    expect(make({ retry: { maxAttempts: 0 } })).toThrow(TypeError)
  })
})

describe('LwaClient retries (refresh and client credentials)', () => {
  it('retries 5xx and succeeds, with full-jitter backoff', async () => {
    const { client, requests, sleeps } = setup([
      status(502),
      oauthError(503, 'temporarily_unavailable'),
      ok(),
    ])
    const tokens = await client.refresh(REFRESH)
    expect(tokens.accessToken).toBe(ACCESS)
    expect(requests).toHaveLength(3)
    // random() = 0.5: half of 200, then half of 400
    expect(sleeps).toEqual([100, 200])
  })

  it('retries network failures and timeouts', async () => {
    const { client, requests } = setup([networkError('ECONNRESET'), hang, ok()], { timeoutMs: 30 })
    await client.clientCredentials('sellingpartnerapi::notifications')
    expect(requests).toHaveLength(3)
  })

  it('gives up after exactly maxAttempts attempts and throws the last failure', async () => {
    const { client, requests, sleeps } = setup([status(500)])
    const error = await lwaFailure(client.refresh(REFRESH))
    expect(error.code).toBe('lwa_server_error')
    expect(error.retryable).toBe(true)
    expect(requests).toHaveLength(DEFAULT_RETRY_POLICY.maxAttempts)
    expect(sleeps).toHaveLength(DEFAULT_RETRY_POLICY.maxAttempts - 1)

    const five = setup([status(503)], { retry: { maxAttempts: 5 } })
    await lwaFailure(five.client.clientCredentials('s'))
    expect(five.requests).toHaveLength(5)
    expect(five.sleeps).toEqual([100, 200, 400, 800])

    const one = setup([status(503)], { retry: { maxAttempts: 1 } })
    await lwaFailure(one.client.refresh(REFRESH))
    expect(one.requests).toHaveLength(1)
    expect(one.sleeps).toEqual([])
  })

  it('does not retry 4xx answers or unexpected responses', async () => {
    for (const handler of [
      oauthError(400, 'invalid_grant', 'The request has an invalid grant parameter : refresh_token'),
      oauthError(401, 'invalid_client', 'Client authentication failed'),
      oauthError(400, 'invalid_request'),
      oauthError(400, 'brand_new_error'),
      status(404),
      ok({ expires_in: 0 }),
      status(307, { location: 'https://elsewhere.example/token' }),
    ]) {
      const { client, requests, sleeps } = setup([handler, ok()])
      const error = await lwaFailure(client.refresh(REFRESH))
      expect(error.retryable).toBe(false)
      expect(requests).toHaveLength(1)
      expect(sleeps).toEqual([])
    }
  })

  it('waits out a 429 Retry-After given in seconds', async () => {
    const { client, requests, sleeps } = setup([status(429, { 'retry-after': '2' }), ok()])
    await client.refresh(REFRESH)
    expect(requests).toHaveLength(2)
    expect(sleeps).toEqual([2000])
  })

  it('waits out a Retry-After given as an HTTP-date, read against deps.now', async () => {
    const { client, sleeps } = setup([status(503, { 'retry-after': 'Sun, 17 May 2026 10:30:03 GMT' }), ok()])
    await client.refresh(REFRESH)
    expect(sleeps).toEqual([3000])
  })

  it('falls back to normal backoff when Retry-After is garbage', async () => {
    const { client, sleeps } = setup([status(429, { 'retry-after': 'in a bit' }), ok()])
    await client.refresh(REFRESH)
    expect(sleeps).toEqual([100])
  })

  it('stops when Retry-After is longer than maxRetryAfterMs and reports it', async () => {
    const { client, requests, sleeps } = setup([status(429, { 'retry-after': '120' }), ok()])
    const error = await lwaFailure(client.refresh(REFRESH))
    expect(error.code).toBe('lwa_throttled')
    expect(error.retryAfterMs).toBe(120_000)
    // What our API clients are told is capped (issue 8): LWA's own value stays in retryAfterMs
    expect(error.retryAfterSeconds).toBe(MAX_CLIENT_RETRY_AFTER_SECONDS)
    expect(requests).toHaveLength(1)
    expect(sleeps).toEqual([])
  })
})

describe('LwaClient.exchangeCode() never replays a code that may have reached LWA', () => {
  for (const [name, handler] of [
    ['a 500', status(500)],
    ['a 503 temporarily_unavailable', oauthError(503, 'temporarily_unavailable')],
    ['a 429', status(429, { 'retry-after': '1' })],
    ['a timeout', hang],
    ['a reset connection', networkError('ECONNRESET')],
    ['a socket timeout', networkError('ETIMEDOUT')],
    ['a fetch TypeError without a cause', () => Promise.reject(new TypeError('fetch failed'))],
  ] as Array<[string, Handler]>) {
    it(`does not retry after ${name}`, async () => {
      const { client, requests, sleeps } = setup([handler, ok()], { timeoutMs: 30 })
      const error = await lwaFailure(client.exchangeCode(CODE, 'https://app.example/callback'))
      expect(error.retryable).toBe(true) // transient, but not for this code
      expect(requests).toHaveLength(1)
      expect(sleeps).toEqual([])
    })
  }

  for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']) {
    it(`retries when the connection was never made (${code})`, async () => {
      const { client, requests } = setup([networkError(code), ok()])
      const tokens = await client.exchangeCode(CODE, 'https://app.example/callback')
      expect(tokens.refreshToken).toBe(REFRESH)
      expect(requests).toHaveLength(2)
    })
  }

  it('retries refused connections once only (issue 8: the code lives minutes, one retry is enough)', async () => {
    const { client, requests } = setup([networkError('ECONNREFUSED')], { retry: { maxAttempts: 5 } })
    const error = await lwaFailure(client.exchangeCode(CODE, 'https://app.example/callback'))
    expect(error.code).toBe('lwa_unreachable')
    expect(error.detail).toContain('ECONNREFUSED')
    expect(requests).toHaveLength(2)
  })

  it('retries an AggregateError only when every address refused', async () => {
    const aggregate =
      (...codes: string[]): Handler =>
      () => {
        throw new TypeError('fetch failed', { cause: new AggregateError(codes.map(systemError)) })
      }
    const refused = setup([aggregate('ECONNREFUSED', 'ENETUNREACH'), ok()])
    await refused.client.exchangeCode(CODE, 'https://app.example/callback')
    expect(refused.requests).toHaveLength(2)

    const mixed = setup([aggregate('ECONNREFUSED', 'ECONNRESET'), ok()])
    await lwaFailure(mixed.client.exchangeCode(CODE, 'https://app.example/callback'))
    expect(mixed.requests).toHaveLength(1)
  })

  it('maps a used or expired code to lwa_invalid_grant', async () => {
    const { client } = setup([
      oauthError(400, 'invalid_grant', 'The request has an invalid grant parameter : code'),
    ])
    const error = await lwaFailure(client.exchangeCode(CODE, 'https://app.example/callback'))
    expect(error.code).toBe('lwa_invalid_grant')
    expect(error.oauthError).toBe('invalid_grant')
    expect(error.httpStatus).toBe(400)
    expect(error.requestId).toBe('req-err-1')
  })

  it('requires a refresh token in the answer', async () => {
    const { client } = setup([ok({ refresh_token: undefined })])
    expect((await lwaFailure(client.exchangeCode(CODE, 'https://x/cb'))).code).toBe('lwa_unexpected_response')
  })
})

describe('LwaClient deadlines and cancellation', () => {
  it('times out a request that never answers (lwa_unreachable, detail says timeout)', async () => {
    const { client, requests } = setup([hang], { timeoutMs: 50, retry: { maxAttempts: 1 } })
    const error = await lwaFailure(client.refresh(REFRESH))
    expect(error.code).toBe('lwa_unreachable')
    expect(error.retryable).toBe(true)
    expect(error.detail).toMatch(/timeout/)
    expect(requests).toHaveLength(1)
  })

  it('times out even when an injected fetch ignores the signal', async () => {
    const { client } = setup([() => new Promise<Response>(() => {})], {
      timeoutMs: 50,
      retry: { maxAttempts: 1 },
    })
    expect((await lwaFailure(client.refresh(REFRESH))).detail).toMatch(/timeout/)
  })

  it('times out a body that never finishes', async () => {
    const stalled: Handler = () =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"access_token":'))
          },
        }),
        { headers: JSON_HEADERS },
      )
    const { client } = setup([stalled], { timeoutMs: 50, retry: { maxAttempts: 1 } })
    const error = await lwaFailure(client.refresh(REFRESH))
    expect(error.code).toBe('lwa_unreachable')
    expect(error.detail).toMatch(/timeout/)
  })

  it("rejects with the caller's abort reason while a request is in flight", async () => {
    const controller = new AbortController()
    const reason = new Error('shutting down')
    const { client, requests } = setup([
      (request) => {
        queueMicrotask(() => controller.abort(reason))
        return hang(request)
      },
    ])
    await expect(client.refresh(REFRESH, { signal: controller.signal })).rejects.toBe(reason)
    expect(requests).toHaveLength(1)
  })

  it("rejects with the caller's abort reason during the backoff wait, without another attempt", async () => {
    const controller = new AbortController()
    const reason = new Error('deadline')
    const { client, requests } = setup(
      [status(503)],
      {},
      {
        sleep: (_ms, signal) => {
          controller.abort(reason)
          return Promise.reject(signal?.reason)
        },
      },
    )
    await expect(client.refresh(REFRESH, { signal: controller.signal })).rejects.toBe(reason)
    expect(requests).toHaveLength(1)
  })

  it('sends nothing when the signal is already aborted', async () => {
    const reason = new Error('too late')
    const { client, requests } = setup([ok()])
    await expect(client.refresh(REFRESH, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(requests).toHaveLength(0)
  })
})

describe('LwaClient logging', () => {
  const ALLOWED_KEYS = new Set([
    'grantType',
    'attempt',
    'status',
    'durationMs',
    'requestId',
    'code',
    'retryable',
    'delayMs',
  ])

  it('logs at debug level only grant type, attempt, status, duration, request id and codes', async () => {
    const { client, logs } = setup([status(500), ok()])
    await client.refresh(REFRESH)
    expect(logs.map((entry) => entry.level)).toEqual(['debug', 'debug', 'debug'])
    for (const entry of logs) {
      for (const key of Object.keys(entry.obj)) expect(ALLOWED_KEYS).toContain(key)
    }
    expect(logs.at(-1)?.obj).toEqual({
      grantType: 'refresh_token',
      attempt: 2,
      status: 200,
      durationMs: 0,
      requestId: 'req-ok-1',
    })
  })
})

describe('LwaClient never leaks secrets', () => {
  const echo = `refresh_token=${REFRESH} code=${CODE} client_secret=${CLIENT_SECRET} access=${ACCESS}`
  const scenarios: Array<[string, Handler[], 'exchange' | 'refresh' | 'grantless']> = [
    ['invalid_grant echoing everything (refresh)', [oauthError(400, 'invalid_grant', echo)], 'refresh'],
    ['invalid_grant echoing everything (code)', [oauthError(400, 'invalid_grant', echo)], 'exchange'],
    ['invalid_client', [oauthError(401, 'invalid_client', `bad secret ${CLIENT_SECRET}`)], 'grantless'],
    ['invalid_scope', [oauthError(400, 'invalid_scope', echo)], 'grantless'],
    ['unknown error', [oauthError(400, `x${CODE}`, echo)], 'exchange'],
    [
      'request_id carrying a token',
      [() => Response.json({ error: 'invalid_grant', request_id: REFRESH }, { status: 400 })],
      'refresh',
    ],
    ['throttled', [oauthError(429, 'throttled', echo, { 'retry-after': '999' })], 'refresh'],
    ['server errors', [status(500, {}, `<html>${echo}</html>`)], 'refresh'],
    ['malformed success', [ok({ token_type: ACCESS, expires_in: REFRESH })], 'exchange'],
    ['success with a bad refresh token', [ok({ refresh_token: `${REFRESH} ${CODE}` })], 'refresh'],
    ['non-JSON success', [() => new Response(echo, { headers: JSON_HEADERS })], 'refresh'],
    [
      'HTML success',
      [() => new Response(`<p>${echo}</p>`, { headers: { 'content-type': 'text/html' } })],
      'refresh',
    ],
    ['oversized success', [ok({ padding: echo.repeat(2000) })], 'refresh'],
    ['redirect', [status(307, { location: `https://evil.example/?${echo}` }, echo)], 'refresh'],
    [
      'a network error whose message carries the body',
      [
        () => {
          throw new TypeError(`fetch failed: ${echo}`, {
            cause: Object.assign(new Error(echo), { code: 'ECONNRESET' }),
          })
        },
      ],
      'refresh',
    ],
    [
      'a thrown non-error value',
      [
        () => {
          throw { message: echo, code: echo }
        },
      ],
      'refresh',
    ],
    ['a timeout', [hang], 'exchange'],
  ]

  for (const [name, handlers, grant] of scenarios) {
    it(`keeps secrets out of errors and logs: ${name}`, async () => {
      const { client, logs } = setup(handlers, { timeoutMs: 30, retry: { maxAttempts: 2 } })
      const call =
        grant === 'exchange'
          ? client.exchangeCode(CODE, 'https://app.example/callback')
          : grant === 'refresh'
            ? client.refresh(REFRESH)
            : client.clientCredentials('sellingpartnerapi::notifications')
      const error = await failure(call)
      const renderings = [
        JSON.stringify(error),
        inspect(error, { depth: Number.POSITIVE_INFINITY }),
        inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
        String(error),
        error instanceof Error ? String(error.stack) : '',
        JSON.stringify(Object.entries(error as object)),
        JSON.stringify(logs),
        inspect(logs, { depth: Number.POSITIVE_INFINITY }),
        inspect(client, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
      ]
      // A code has no recognisable shape, so only the call that sent it can redact it; other calls never
      // see one, and LWA could not echo it to them
      const secrets =
        grant === 'exchange' ? SECRETS : SECRETS.filter((secret) => !CODE_SECRETS.includes(secret))
      for (const text of renderings) {
        for (const secret of secrets) expect(text).not.toContain(secret)
      }
    })
  }

  it('checks every LwaError code the client can produce', async () => {
    // The scenarios above must reach each kind of failure at least once
    const codes = new Set<string>()
    for (const [, handlers, grant] of scenarios) {
      const { client } = setup(handlers, { timeoutMs: 30, retry: { maxAttempts: 1 } })
      const error = await failure(
        grant === 'exchange' ? client.exchangeCode(CODE, 'https://x/cb') : client.refresh(REFRESH),
      )
      if (error instanceof LwaError) codes.add(error.code)
    }
    expect([...codes].sort()).toEqual(
      [
        'lwa_error',
        'lwa_invalid_client',
        'lwa_invalid_grant',
        'lwa_invalid_scope',
        'lwa_server_error',
        'lwa_throttled',
        'lwa_unexpected_response',
        'lwa_unreachable',
      ].sort(),
    )
  })
})
