/**
 * The sending half of a token request: builds the form body for a grant and POSTs it. It does not look at
 * the answer; `response.ts` does that without touching the network.
 *
 * @see ../../../../shared/spapi-facts.md §4.1-4.2
 */
import { createRequire } from 'node:module'
import { SpConnectError } from '../../domain/errors.ts'
import type { Deps } from '../deps.ts'
import { cancelBody } from './response.ts'
import type { LwaClientOptions, LwaCredentials, TokenGrant } from './types.ts'

// Read at run time rather than imported: package.json sits outside src/, which tsc's build (rootDir src) cannot
// compile in, and it is three levels up from both src/core/lwa/ and dist/core/lwa/.
const packageJson = createRequire(import.meta.url)('../../../package.json') as { readonly version: string }

export const DEFAULT_USER_AGENT = `sp-connect/${packageJson.version} (Language=TypeScript; Platform=Node)`

/** What sending needs: the endpoint, one set of credentials and the User-Agent. */
interface SendOptions {
  readonly tokenUrl: LwaClientOptions['tokenUrl']
  readonly credentials: () => LwaCredentials
  readonly userAgent?: LwaClientOptions['userAgent']
}

/**
 * The `application/x-www-form-urlencoded` body for a grant, with the client credentials in the body as the
 * SP-API docs show. `URLSearchParams` percent-encodes `|` (as in `Atzr|…`) and writes spaces between
 * scopes as `+`. A refresh never carries `scope`, and client credentials never carry a refresh token.
 */
export function tokenRequestBody(grant: TokenGrant, credentials: LwaCredentials): URLSearchParams {
  const body = new URLSearchParams({ grant_type: grant.grantType })
  switch (grant.grantType) {
    case 'authorization_code':
      body.set('code', grant.code)
      body.set('redirect_uri', grant.redirectUri)
      break
    case 'refresh_token':
      body.set('refresh_token', grant.refreshToken)
      break
    case 'client_credentials':
      body.set('scope', grant.scope)
      break
  }
  body.set('client_id', credentials.clientId)
  body.set('client_secret', credentials.clientSecret)
  return body
}

/**
 * Reads the credentials (once per call, so a rotated secret applies to the next attempt) and checks that
 * both parts are non-empty. Throws `config_invalid` otherwise.
 */
function readCredentials(credentials: () => LwaCredentials): LwaCredentials {
  return checkCredentials(credentials())
}

/** Returns the credentials if both parts are non-empty strings; throws `config_invalid` otherwise. */
export function checkCredentials(value: LwaCredentials): LwaCredentials {
  if (
    typeof value?.clientId !== 'string' ||
    typeof value.clientSecret !== 'string' ||
    value.clientId.trim() === '' ||
    value.clientSecret.trim() === ''
  ) {
    throw new SpConnectError('config_invalid', { detail: 'The LWA client id or client secret is empty.' })
  }
  return value
}

/**
 * POSTs `grant` to the token endpoint and returns the raw `Response`, whatever its status.
 *
 * Redirects are never followed (`redirect: 'manual'`): a 307/308 would resend the client secret to
 * wherever it points. The 3xx comes back as a response, and `processTokenResponse` rejects it.
 *
 * The promise rejects with `signal.reason` as soon as `signal` aborts, even if an injected `fetch` ignores
 * the signal; a response that still arrives afterwards has its body cancelled. Network failures reject
 * with whatever `deps.fetch` threw; the client classifies them.
 */
export async function sendTokenRequest(
  grant: TokenGrant,
  options: SendOptions,
  deps: Pick<Deps, 'fetch'>,
  signal: AbortSignal,
): Promise<Response> {
  signal.throwIfAborted()
  const credentials = readCredentials(options.credentials)
  const pending = deps.fetch(options.tokenUrl, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded;charset=UTF-8',
      Accept: 'application/json',
      'User-Agent': options.userAgent ?? DEFAULT_USER_AGENT,
    },
    body: tokenRequestBody(grant, credentials).toString(),
    redirect: 'manual',
    signal,
  })
  return await untilAborted(pending, signal, (response) => cancelBody(response))
}

/**
 * Settles like `promise`, or rejects with `signal.reason` once `signal` aborts, whichever comes first.
 * `onLateValue` receives a value that arrives after the abort, to release it.
 */
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  onLateValue?: (value: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        if (signal.aborted) onLateValue?.(value)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}
