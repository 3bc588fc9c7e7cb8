import { describe, expect, it } from 'vitest'
import { DEFAULT_USER_AGENT, sendTokenRequest, tokenRequestBody } from '../../src/core/lwa/request.ts'
import type { LwaCredentials, TokenGrant } from '../../src/core/lwa/types.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'

const TOKEN_URL = 'https://api.amazon.com/auth/o2/token'
const CREDENTIALS: LwaCredentials = {
  clientId: 'amzn1.application-oa2-client.0123456789abcdef',
  clientSecret: 'amzn1.oa2-cs.v1.s3cr3t|+/=&x',
}

interface Sent {
  readonly url: string
  readonly init: RequestInit
  readonly body: string
}

function recordingFetch(response: () => Response = () => new Response('{}')) {
  const sent: Sent[] = []
  const fetch: typeof globalThis.fetch = async (input, init = {}) => {
    sent.push({ url: String(input), init, body: String(init.body) })
    return response()
  }
  return { fetch, sent }
}

async function send(grant: TokenGrant, userAgent?: string): Promise<Sent> {
  const { fetch, sent } = recordingFetch()
  await sendTokenRequest(
    grant,
    {
      tokenUrl: TOKEN_URL,
      credentials: () => CREDENTIALS,
      ...(userAgent === undefined ? {} : { userAgent }),
    },
    { fetch },
    new AbortController().signal,
  )
  const first = sent[0]
  if (first === undefined) throw new Error('nothing was sent')
  return first
}

describe('tokenRequestBody()', () => {
  it('encodes an authorization_code grant with redirect_uri and the client credentials in the body', () => {
    const body = tokenRequestBody(
      {
        grantType: 'authorization_code',
        code: 'SplxlOexamplebYS6WxSbIA',
        redirectUri: 'https://app.example/cb?x=1',
      },
      CREDENTIALS,
    )
    expect([...body.keys()]).toEqual(['grant_type', 'code', 'redirect_uri', 'client_id', 'client_secret'])
    expect(body.toString()).toBe(
      'grant_type=authorization_code&code=SplxlOexamplebYS6WxSbIA' +
        '&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1' +
        '&client_id=amzn1.application-oa2-client.0123456789abcdef' +
        '&client_secret=amzn1.oa2-cs.v1.s3cr3t%7C%2B%2F%3D%26x',
    )
  })

  it('percent-encodes | in refresh tokens and sends no scope on a refresh', () => {
    const body = tokenRequestBody({ grantType: 'refresh_token', refreshToken: 'Atzr|IwEBIA+/=' }, CREDENTIALS)
    expect([...body.keys()]).toEqual(['grant_type', 'refresh_token', 'client_id', 'client_secret'])
    expect(body.toString()).toContain('refresh_token=Atzr%7CIwEBIA%2B%2F%3D&')
    expect(body.toString()).not.toContain('|')
    expect(body.has('scope')).toBe(false)
  })

  it('sends space-separated scopes form-encoded and no refresh token on client_credentials', () => {
    const body = tokenRequestBody(
      {
        grantType: 'client_credentials',
        scope: 'sellingpartnerapi::notifications sellingpartnerapi::client_credential:rotation',
      },
      CREDENTIALS,
    )
    expect([...body.keys()]).toEqual(['grant_type', 'scope', 'client_id', 'client_secret'])
    expect(body.toString()).toContain(
      'scope=sellingpartnerapi%3A%3Anotifications+sellingpartnerapi%3A%3Aclient_credential%3Arotation&',
    )
    // what a form decoder on LWA's side reads back
    expect(new URLSearchParams(body.toString()).get('scope')).toBe(
      'sellingpartnerapi::notifications sellingpartnerapi::client_credential:rotation',
    )
  })
})

describe('sendTokenRequest()', () => {
  it('POSTs a form body with JSON accepted, the default user agent and redirects not followed', async () => {
    const sent = await send({ grantType: 'refresh_token', refreshToken: 'Atzr|abc' })
    expect(sent.url).toBe(TOKEN_URL)
    expect(sent.init.method).toBe('POST')
    expect(sent.init.redirect).toBe('manual')
    const headers = new Headers(sent.init.headers)
    expect(headers.get('content-type')).toBe('application/x-www-form-urlencoded;charset=UTF-8')
    expect(headers.get('accept')).toBe('application/json')
    expect(headers.get('user-agent')).toBe(DEFAULT_USER_AGENT)
    expect(DEFAULT_USER_AGENT).toMatch(
      /^sp-connect\/\d+\.\d+\.\d+\S* \(Language=TypeScript; Platform=Node\)$/,
    )
    expect(headers.has('authorization')).toBe(false)
    expect(sent.init.signal).toBeInstanceOf(AbortSignal)
    expect(new URLSearchParams(sent.body).get('refresh_token')).toBe('Atzr|abc')
  })

  it('uses a configured user agent', async () => {
    const sent = await send({ grantType: 'client_credentials', scope: 's' }, 'my-app/2.0')
    expect(new Headers(sent.init.headers).get('user-agent')).toBe('my-app/2.0')
  })

  it('returns the raw response whatever its status', async () => {
    const { fetch } = recordingFetch(() => new Response('nope', { status: 503 }))
    const response = await sendTokenRequest(
      { grantType: 'refresh_token', refreshToken: 'Atzr|abc' },
      { tokenUrl: TOKEN_URL, credentials: () => CREDENTIALS },
      { fetch },
      new AbortController().signal,
    )
    expect(response.status).toBe(503)
  })

  it('refuses empty credentials with config_invalid and sends nothing', async () => {
    const { fetch, sent } = recordingFetch()
    const error = await sendTokenRequest(
      { grantType: 'refresh_token', refreshToken: 'Atzr|abc' },
      { tokenUrl: TOKEN_URL, credentials: () => ({ clientId: 'id', clientSecret: ' ' }) },
      { fetch },
      new AbortController().signal,
    ).catch((e: unknown) => e)
    expect(isSpConnectError(error, 'config_invalid')).toBe(true)
    expect(sent).toHaveLength(0)
  })

  it('rejects with the abort reason even when the injected fetch ignores the signal', async () => {
    const fetch: typeof globalThis.fetch = () => new Promise<Response>(() => {})
    const controller = new AbortController()
    const pending = sendTokenRequest(
      { grantType: 'refresh_token', refreshToken: 'Atzr|abc' },
      { tokenUrl: TOKEN_URL, credentials: () => CREDENTIALS },
      { fetch },
      controller.signal,
    )
    const reason = new Error('stop')
    controller.abort(reason)
    await expect(pending).rejects.toBe(reason)
  })

  it('does not call fetch when the signal is already aborted', async () => {
    const { fetch, sent } = recordingFetch()
    const reason = new Error('already')
    await expect(
      sendTokenRequest(
        { grantType: 'refresh_token', refreshToken: 'Atzr|abc' },
        { tokenUrl: TOKEN_URL, credentials: () => CREDENTIALS },
        { fetch },
        AbortSignal.abort(reason),
      ),
    ).rejects.toBe(reason)
    expect(sent).toHaveLength(0)
  })
})
