/**
 * Calls the Selling Partner API for a connection: regional endpoint, `x-amz-access-token` from the token
 * manager, and one forced refresh plus one retry when SP-API says the token itself is bad or expired
 * (spapi-facts.md §6). SigV4 is not needed since October 2023.
 */
import type { Store } from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import { SpConnectError } from '../errors.ts'
import { type Region, SPAPI_HOSTS } from '../regions.ts'
import type { TokenManager } from '../tokens/manager.ts'

export interface SpApiEndpoints {
  /** `https://{host}` in production. */
  readonly spapiUrlTemplate: string
  readonly spapiSandbox: boolean
}

export interface SpApiRequest {
  readonly method: string
  /** An SP-API path such as `/sellers/v1/marketplaceParticipations`, optionally with a query string. */
  readonly path: string
  readonly body?: string | undefined
  readonly contentType?: string | undefined
}

export interface SpApiResponse {
  readonly status: number
  readonly headers: Headers
  readonly body: string
  readonly requestId: string | null
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'])
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024
/** SP-API's own words for a token that is bad, revoked or expired (spapi-facts.md §6.2). */
const TOKEN_REJECTED = /access token you provided (is revoked, malformed or invalid|has expired)/i

export class SpApiClient {
  readonly #store: Store
  readonly #tokens: TokenManager
  readonly #endpoints: SpApiEndpoints
  readonly #deps: Deps
  readonly #userAgent: string
  readonly #timeoutMs: number
  readonly #regions = new Map<string, Region>()

  constructor(
    options: {
      store: Store
      tokens: TokenManager
      endpoints: SpApiEndpoints
      userAgent?: string
      timeoutMs?: number
    },
    deps: Deps,
  ) {
    this.#store = options.store
    this.#tokens = options.tokens
    this.#endpoints = options.endpoints
    this.#deps = deps
    this.#userAgent = options.userAgent ?? 'sp-connect/0.1 (Language=TypeScript; Platform=Node)'
    this.#timeoutMs = options.timeoutMs ?? 30_000
  }

  /** The base URL of a region's SP-API endpoint under the configured template. */
  baseUrl(region: Region): string {
    const hosts = SPAPI_HOSTS[region]
    const host = this.#endpoints.spapiSandbox ? hosts.sandbox : hosts.production
    return this.#endpoints.spapiUrlTemplate.replace('{host}', host).replace(/\/+$/, '')
  }

  async call(connectionId: string, request: SpApiRequest): Promise<SpApiResponse> {
    const method = request.method.toUpperCase()
    if (!METHODS.has(method))
      throw new SpConnectError('invalid_request', { detail: 'unsupported HTTP method' })
    const url = new URL(`${this.baseUrl(await this.#regionOf(connectionId))}${safePath(request.path)}`)
    let token = await this.#tokens.getAccessToken(connectionId)
    let response = await this.#send(url, method, request, token.accessToken)
    if (response.status === 403 && TOKEN_REJECTED.test(response.body)) {
      token = await this.#tokens.getAccessToken(connectionId, { forceRefresh: true })
      response = await this.#send(url, method, request, token.accessToken)
    }
    return response
  }

  /**
   * One call with a token the caller already holds (the fresh token of a callback, before any connection row
   * exists for it): no refresh, no retry.
   */
  async callWithToken(region: Region, accessToken: string, request: SpApiRequest): Promise<SpApiResponse> {
    const method = request.method.toUpperCase()
    if (!METHODS.has(method))
      throw new SpConnectError('invalid_request', { detail: 'unsupported HTTP method' })
    const url = new URL(`${this.baseUrl(region)}${safePath(request.path)}`)
    return this.#send(url, method, request, accessToken)
  }

  async #regionOf(connectionId: string): Promise<Region> {
    const known = this.#regions.get(connectionId)
    if (known) return known
    const row = await this.#store.getConnection(connectionId)
    if (!row) throw new SpConnectError('connection_not_found')
    this.#regions.set(connectionId, row.region)
    return row.region
  }

  async #send(url: URL, method: string, request: SpApiRequest, accessToken: string): Promise<SpApiResponse> {
    const headers = new Headers({
      'x-amz-access-token': accessToken,
      'user-agent': this.#userAgent,
      accept: 'application/json',
    })
    if (request.body !== undefined) headers.set('content-type', request.contentType ?? 'application/json')
    let response: Response
    try {
      response = await this.#deps.fetch(url, {
        method,
        headers,
        body: request.body ?? null,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      })
    } catch (cause) {
      throw new SpConnectError('spapi_unreachable', {
        cause,
        detail: `${method} ${url.pathname} failed to connect`,
      })
    }
    const body = await readCapped(response)
    return {
      status: response.status,
      headers: response.headers,
      body,
      requestId: response.headers.get('x-amzn-requestid'),
    }
  }
}

/** Only a plain absolute path (and query) may be appended to the endpoint: no scheme, host or traversal. */
function safePath(path: string): string {
  if (
    !path.startsWith('/') ||
    path.startsWith('//') ||
    path.includes('\\') ||
    /(^|\/)\.\.?(\/|$|\?)/.test(path)
  ) {
    throw new SpConnectError('invalid_request', {
      detail: 'SP-API path must be an absolute path without dot segments',
    })
  }
  if (path.length > 4096 || /[\s#]/.test(path))
    throw new SpConnectError('invalid_request', { detail: 'bad SP-API path' })
  return path
}

async function readCapped(response: Response): Promise<string> {
  const length = Number(response.headers.get('content-length') ?? '0')
  if (length > MAX_RESPONSE_BYTES)
    throw new SpConnectError('spapi_unreachable', { detail: 'SP-API response too large' })
  const text = await response.text()
  if (text.length > MAX_RESPONSE_BYTES)
    throw new SpConnectError('spapi_unreachable', { detail: 'SP-API response too large' })
  return text
}
