/**
 * The LWA client with several candidate client secrets (rotation): the next candidate at once after
 * `invalid_client` / `unauthorized_client`, reports to the source, a second read of the source before giving
 * up, and no secret in any error or log line.
 */
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import type { Logger } from '../../src/core/deps.ts'
import { LwaClient } from '../../src/core/lwa/client.ts'
import type { CredentialSource, LwaCredentials } from '../../src/core/lwa/types.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'

const TOKEN_URL = 'https://api.amazon.com/auth/o2/token'
const CLIENT_ID = 'amzn1.application-oa2-client.abc123'
const OLD = 'cs-old-7e1d-SECRETONE'
const NEW = 'cs-new-91ac-SECRETTWO'
const NEWEST = 'cs-newest-44-SECRETTHREE'
const REFRESH = 'Atzr|IwEBRefreshSecret0001'
const creds = (clientSecret: string): LwaCredentials => ({ clientId: CLIENT_ID, clientSecret })

type Handler = (secret: string) => Response
const ok: Handler = () =>
  Response.json({ access_token: 'Atza|IwEBAccess', token_type: 'bearer', expires_in: 3600 })
const oauthError =
  (status: number, error: string): Handler =>
  () =>
    Response.json({ error, error_description: 'Client authentication failed', request_id: 'r-1' }, { status })
/** Accepts only the listed secrets, like LWA after a rotation. */
const acceptOnly =
  (...secrets: string[]): Handler =>
  (secret) =>
    secrets.includes(secret) ? ok(secret) : oauthError(401, 'invalid_client')(secret)

interface Recorder extends CredentialSource {
  readonly events: string[]
  reads: number
}

function source(lists: readonly (readonly string[])[]): Recorder {
  const recorder: Recorder = {
    events: [],
    reads: 0,
    candidates() {
      const list = lists[Math.min(recorder.reads, lists.length - 1)] ?? []
      recorder.reads += 1
      return Promise.resolve(list.map(creds))
    },
    accepted(c) {
      recorder.events.push(`accepted ${c.clientSecret}`)
    },
    rejected(c, code) {
      recorder.events.push(`rejected ${c.clientSecret} ${code}`)
    },
  }
  return recorder
}

function setup(credentials: CredentialSource | (() => LwaCredentials), handler: Handler) {
  const sent: string[] = []
  const sleeps: number[] = []
  const logs: string[] = []
  const log = (level: string) => (obj: object, msg?: string) => {
    logs.push(`${level} ${msg ?? ''} ${JSON.stringify(obj)}`)
  }
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
  const client = new LwaClient(
    { tokenUrl: TOKEN_URL, credentials },
    {
      fetch: async (_input, init) => {
        const secret = new URLSearchParams(String(init?.body)).get('client_secret') ?? ''
        sent.push(secret)
        return handler(secret)
      },
      now: () => Date.UTC(2026, 0, 1),
      randomBytes: (size) => new Uint8Array(size),
      logger,
      sleep: async (ms) => {
        sleeps.push(ms)
      },
      random: () => 0.5,
    },
  )
  return { client, sent, sleeps, logs }
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

describe('LwaClient with a credential source', () => {
  it('uses the first candidate when LWA accepts it, and says so', async () => {
    const src = source([[NEW, OLD]])
    const { client, sent } = setup(src, ok)
    await client.refresh(REFRESH)
    expect(sent).toEqual([NEW])
    expect(src.events).toEqual([`accepted ${NEW}`])
  })

  it('tries the next candidate at once after invalid_client: no backoff, no retry spent', async () => {
    const src = source([[NEW, OLD]])
    const { client, sent, sleeps } = setup(src, acceptOnly(OLD))
    const tokens = await client.refresh(REFRESH)
    expect(tokens.accessToken).toBe('Atza|IwEBAccess')
    expect(sent).toEqual([NEW, OLD])
    expect(sleeps).toEqual([])
    expect(src.events).toEqual([`rejected ${NEW} lwa_invalid_client`, `accepted ${OLD}`])
  })

  it('treats unauthorized_client the same way', async () => {
    const src = source([[OLD, NEW]])
    const { client, sent } = setup(src, (s) =>
      s === NEW ? ok(s) : oauthError(400, 'unauthorized_client')(s),
    )
    await client.clientCredentials('sellingpartnerapi::client_credential:rotation')
    expect(sent).toEqual([OLD, NEW])
    expect(src.events).toEqual([`rejected ${OLD} lwa_unauthorized_client`, `accepted ${NEW}`])
  })

  it('tries the next candidate for an authorization code too (a refused client never consumed it)', async () => {
    const src = source([[OLD, NEW]])
    const { client, sent } = setup(src, (s) =>
      s === NEW
        ? Response.json({
            access_token: 'Atza|a',
            refresh_token: 'Atzr|r',
            token_type: 'bearer',
            expires_in: 3600,
          })
        : oauthError(401, 'invalid_client')(s),
    )
    const tokens = await client.exchangeCode('SplxlOcode', 'https://app.example.com/callback')
    expect(tokens.refreshToken).toBe('Atzr|r')
    expect(sent).toEqual([OLD, NEW])
  })

  it('reads the source once more after every candidate was refused, and tries only what is new', async () => {
    // Another process stored NEWEST meanwhile: the second read finds it
    const src = source([
      [NEW, OLD],
      [NEWEST, NEW, OLD],
    ])
    const { client, sent } = setup(src, acceptOnly(NEWEST))
    await client.refresh(REFRESH)
    expect(sent).toEqual([NEW, OLD, NEWEST])
    expect(src.reads).toBe(2)
  })

  it('throws lwa_invalid_client when every candidate is refused, without a retry or a secret in it', async () => {
    const src = source([[NEW, OLD]])
    const { client, sent, sleeps, logs } = setup(src, acceptOnly())
    const error = await failure(client.refresh(REFRESH))
    expect(isSpConnectError(error, 'lwa_invalid_client')).toBe(true)
    expect(sent).toEqual([NEW, OLD])
    expect(src.reads).toBe(2)
    expect(sleeps).toEqual([])
    expect(src.events).toEqual([`rejected ${NEW} lwa_invalid_client`, `rejected ${OLD} lwa_invalid_client`])
    const visible = `${inspect(error, { depth: 5 })} ${JSON.stringify(error)} ${logs.join('\n')}`
    for (const secret of [OLD, NEW, 'SECRETONE', 'SECRETTWO', REFRESH]) expect(visible).not.toContain(secret)
  })

  it('does not switch candidates on other errors: a 5xx is retried with the same order', async () => {
    const src = source([[NEW, OLD]])
    let calls = 0
    const { client, sent, sleeps } = setup(src, (s) => {
      calls += 1
      return calls === 1 ? oauthError(500, 'server_error')(s) : ok(s)
    })
    await client.refresh(REFRESH)
    expect(sent).toEqual([NEW, NEW])
    expect(sleeps).toHaveLength(1)
  })

  it('does not try other candidates after invalid_grant: that is about the seller, not the app', async () => {
    const src = source([[NEW, OLD]])
    const { client, sent } = setup(src, oauthError(400, 'invalid_grant'))
    const error = await failure(client.refresh(REFRESH))
    expect(isSpConnectError(error, 'lwa_invalid_grant')).toBe(true)
    expect(sent).toEqual([NEW])
    expect(src.events).toEqual([])
  })

  it('survives a source whose callbacks throw', async () => {
    const src: CredentialSource = {
      candidates: () => [creds(NEW), creds(OLD)],
      accepted: () => {
        throw new Error('boom')
      },
      rejected: () => {
        throw new Error('boom')
      },
    }
    const { client, sent } = setup(src, acceptOnly(OLD))
    await expect(client.refresh(REFRESH)).resolves.toMatchObject({ accessToken: 'Atza|IwEBAccess' })
    expect(sent).toEqual([NEW, OLD])
  })

  it('refuses an empty or invalid candidate list with config_invalid before sending anything', async () => {
    for (const candidates of [[], [creds('')], [{ clientId: '', clientSecret: NEW }]]) {
      const { client, sent } = setup({ candidates: () => candidates }, ok)
      const error = await failure(client.refresh(REFRESH))
      expect(isSpConnectError(error, 'config_invalid')).toBe(true)
      expect(sent).toEqual([])
    }
  })

  it('a plain credentials function is one candidate, read once per attempt', async () => {
    let reads = 0
    const { client, sent } = setup(() => {
      reads += 1
      return creds(OLD)
    }, acceptOnly())
    const error = await failure(client.refresh(REFRESH))
    expect(isSpConnectError(error, 'lwa_invalid_client')).toBe(true)
    expect(sent).toEqual([OLD])
    expect(reads).toBe(1)
  })

  it('refuses credentials that are neither a function nor a source', () => {
    expect(() => setup({} as unknown as CredentialSource, ok)).toThrow(TypeError)
  })
})
