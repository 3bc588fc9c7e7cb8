/**
 * Calls the Selling Partner API for a connection: one call path for the library, the HTTP passthrough and the
 * CLI. A call names a known SP-API operation (anything else is refused before a token is fetched), goes to the
 * connection's regional endpoint (sandbox when configured), waits for a turn under the operation's usage plan
 * (./limiter.ts, shared across instances), carries `x-amz-access-token` (the LWA token, or a Restricted Data
 * Token for restricted operations) and a conforming User-Agent, and is retried when that is safe
 * (./retry.ts). SigV4 is not needed since October 2023 (spapi-facts.md §6.1).
 */

import { SpConnectError } from '../../domain/errors.ts'
import { type Region, SPAPI_HOSTS } from '../../domain/regions.ts'
import type { Store } from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import type { TokenManager } from '../tokens/manager.ts'
import { BufferBudget, prepareBody, type RequestBody, readCapped, type SpApiBody, streamOf } from './body.ts'
import type { CallLimiter } from './limiter.ts'
import { findOperation, type RatePlan, RDT_PLAN, type SpApiOperation } from './operations.ts'
import { forwardableHeaders, returnedHeaders, type SpApiQuery, splitPathAndQuery } from './request-parts.ts'
import {
  DATA_ELEMENTS,
  RESTRICTED_METHODS,
  type RestrictedDataToken,
  RestrictedDataTokens,
  type RestrictedResource,
} from './restricted-data-tokens.ts'
import { backoffMs, failedBeforeConnecting, isIdempotent, parseRateLimit, retryAfterMs } from './retry.ts'
import { fetchTransport, type SpApiTransport, type UpstreamResponse } from './transport.ts'
import { defaultUserAgent } from './user-agent.ts'

const SP_CONNECT_VERSION = '0.1.0'

export interface SpApiEndpoints {
  /** `https://{host}` in production. */
  readonly spapiUrlTemplate: string
  readonly spapiSandbox: boolean
}

/** One SP-API request, as a caller of {@link SpApiClient.call} gives it. */
export interface SpApiCallRequest {
  readonly method: string
  /** An SP-API path such as `/orders/v0/orders/{id}`, percent-encoded, optionally with a `?query`. */
  readonly path: string
  /** More query parameters (arrays repeat the name). */
  readonly query?: SpApiQuery | undefined
  /** A string or bytes (retried when safe), or a stream (retried only if it fits the replay buffer). */
  readonly body?: SpApiBody
  /** Only Content-Type, Content-Language, Accept and Accept-Language are forwarded (./request-parts.ts). */
  readonly headers?: HeadersInit | undefined
  /**
   * For restricted operations: the data elements to ask the RDT for (`buyerInfo`, `shippingAddress`,
   * `buyerTaxInformation`); default every element the operation allows.
   */
  readonly dataElements?: readonly string[] | undefined
  /** Epoch ms by which the call must have been sent (queue waits and retries included). */
  readonly deadline?: number | undefined
  /** The same as a deadline this many ms from now; ignored when `deadline` is given. */
  readonly timeoutMs?: number | undefined
  readonly signal?: AbortSignal | undefined
}

/** SP-API's answer: the status, the headers worth passing on, and the body as a stream. */
export interface SpApiCallResponse {
  readonly status: number
  /** Content-Type, x-amzn-RequestId, x-amzn-RateLimit-Limit, x-amzn-ErrorType, Retry-After (when sent). */
  readonly headers: Headers
  readonly requestId: string | null
  /** The operation called (its model operationId). */
  readonly operation: string
  /** The body, to read once (or not at all: then cancel it). */
  readonly body: ReadableStream<Uint8Array> | null
  /**
   * The body's size in bytes when it is known before reading (SP-API declared it and the body arrives as sent,
   * not decompressed), else null. Lets the HTTP door answer a small body in one write.
   */
  readonly bodyLength: number | null
  /** The body as text, at most `maxBytes` (default the client's response cap). */
  text(maxBytes?: number): Promise<string>
}

/** The legacy, fully-read shape that {@link SpApiClient.callWithToken} returns. */
interface SpApiRequest {
  readonly method: string
  readonly path: string
  readonly body?: string | undefined
  readonly contentType?: string | undefined
}

interface SpApiResponse {
  readonly status: number
  readonly headers: Headers
  readonly body: string
  readonly requestId: string | null
}

export interface SpApiClientOptions {
  readonly store: Store
  readonly tokens: TokenManager
  readonly endpoints: SpApiEndpoints
  readonly limiter: CallLimiter
  /** A complete User-Agent; default `sp-connect/<version> (Language=TypeScript; Platform=Node.js/…; OS=…)`. */
  readonly userAgent?: string
  /** Per attempt, until the response headers arrive; default 30 s. */
  readonly attemptTimeoutMs?: number
  /** Default deadline of a call (queueing and retries), from when it starts; default 30 s. */
  readonly deadlineMs?: number
  /** Attempts for 5xx, timeouts and connection errors; default 4. 429s are retried until the deadline. */
  readonly maxAttempts?: number
  /** Streamed request bodies up to this size are buffered so they can be retried; default 256 KiB. */
  readonly replayBufferBytes?: number
  /** Largest request body sent; default 32 MiB. */
  readonly maxRequestBytes?: number
  /**
   * Request-body bytes all calls of this client may hold in memory at once (streams read into the replay
   * buffer, kept until the call ends); default 64 MiB. A streamed call that cannot reserve its replay buffer is
   * refused with `spapi_queue_full` before its body is read.
   */
  readonly maxBufferedRequestBytes?: number
  /** Largest response body read by `text()` and internal reads; default 16 MiB. */
  readonly maxResponseBytes?: number
  /**
   * How requests leave the process (./transport.ts); default `fetchTransport(deps.fetch)`, so an injected
   * `Deps.fetch` is used. `nodeHttpTransport()` is the faster choice where no fetch needs injecting.
   */
  readonly transport?: SpApiTransport
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'])
/** SP-API's own words for a token that is bad, revoked or expired (spapi-facts.md §6.2). */
const TOKEN_REJECTED = /access token you provided (is revoked, malformed or invalid|has expired)/i
/** A 403 body larger than this is not the short token-rejection answer. */
const ERROR_PEEK_BYTES = 64 * 1024
const RDT_PATH = '/tokens/2021-03-01/restrictedDataToken'
/**
 * The Tokens API call sp-connect makes itself, as the table knows it; issuing an RDT twice does no harm, so it
 * is retried like a read.
 */
const RDT_OPERATION: SpApiOperation = {
  ...(findOperation('POST', RDT_PATH)?.operation ?? {
    api: 'tokens',
    version: '2021-03-01',
    name: 'createRestrictedDataToken',
    operationId: 'createRestrictedDataToken',
    method: 'POST',
    path: RDT_PATH,
  }),
  ...RDT_PLAN,
  idempotent: true,
}

/** How to get (and re-get, after a refusal) the credential of one call. */
interface Credential {
  get(): Promise<string>
  /** SP-API refused the credential: the next get() must bring a fresh one. */
  refused(): void
}

interface Attempt {
  readonly url: URL
  readonly method: string
  readonly operation: SpApiOperation
  readonly plan: RatePlan
  readonly limiterKey: string
  readonly headers: Headers
  readonly body: RequestBody
  readonly deadline: number
  readonly signal: AbortSignal | undefined
  readonly credential: Credential
}

/** Thrown inside one attempt: the error to report, and whether the request can have left at all. */
class AttemptFailed {
  readonly error: SpConnectError
  readonly nothingSent: boolean
  constructor(error: SpConnectError, nothingSent: boolean) {
    this.error = error
    this.nothingSent = nothingSent
  }
}

export class SpApiClient {
  readonly #store: Store
  readonly #tokens: TokenManager
  readonly #endpoints: SpApiEndpoints
  readonly #limiter: CallLimiter
  readonly #deps: Deps
  readonly #transport: SpApiTransport
  readonly #userAgent: string
  readonly #attemptTimeoutMs: number
  readonly #deadlineMs: number
  readonly #maxAttempts: number
  readonly #replayBytes: number
  readonly #maxRequestBytes: number
  readonly #maxResponseBytes: number
  readonly #buffered: BufferBudget
  readonly #regions = new Map<string, Region>()
  /** The last rate Amazon reported per limiter key, so the limiter hears only of changes. */
  readonly #observed = new Map<string, number>()
  readonly #rdts: RestrictedDataTokens

  constructor(options: SpApiClientOptions, deps: Deps) {
    this.#store = options.store
    this.#tokens = options.tokens
    this.#endpoints = options.endpoints
    this.#limiter = options.limiter
    this.#deps = deps
    this.#transport = options.transport ?? fetchTransport(deps.fetch)
    this.#userAgent = options.userAgent ?? defaultUserAgent(SP_CONNECT_VERSION)
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? 30_000
    this.#deadlineMs = options.deadlineMs ?? 30_000
    this.#maxAttempts = options.maxAttempts ?? 4
    this.#replayBytes = options.replayBufferBytes ?? 256 * 1024
    this.#maxRequestBytes = options.maxRequestBytes ?? 32 * 1024 * 1024
    this.#maxResponseBytes = options.maxResponseBytes ?? 16 * 1024 * 1024
    this.#buffered = new BufferBudget(options.maxBufferedRequestBytes ?? 64 * 1024 * 1024)
    this.#rdts = new RestrictedDataTokens({ issue: (id, body, opts) => this.#issueRdt(id, body, opts) }, deps)
  }

  /** Request-body bytes the calls in progress hold in memory (see `maxBufferedRequestBytes`). */
  get bufferedRequestBytes(): number {
    return this.#buffered.used
  }

  /** The base URL of a region's SP-API endpoint under the configured template. */
  baseUrl(region: Region): string {
    const hosts = SPAPI_HOSTS[region]
    const host = this.#endpoints.spapiSandbox ? hosts.sandbox : hosts.production
    return this.#endpoints.spapiUrlTemplate.replace('{host}', host).replace(/\/+$/, '')
  }

  /**
   * Calls one SP-API operation for a connection and returns Amazon's answer, whatever its status. Throws
   * `spapi_operation_unknown` (not an operation sp-connect knows), `invalid_request` (bad path, query or
   * header), `spapi_throttled` / `spapi_queue_full` (no turn within the deadline; `retryAfterSeconds` set),
   * `spapi_timeout`, `spapi_unreachable`, `restricted_data_token_failed`, or the token manager's errors.
   */
  async call(connectionId: string, request: SpApiCallRequest): Promise<SpApiCallResponse> {
    const method = normalizeMethod(request.method)
    const { path, search } = splitPathAndQuery(request.path, request.query)
    // HEAD is GET without a body as far as the models go.
    const match = findOperation(method === 'HEAD' ? 'GET' : method, path)
    if (!match)
      throw new SpConnectError('spapi_operation_unknown', { detail: `${method} is no known operation there` })
    const { operation } = match
    const headers = forwardableHeaders(request.headers)
    const dataElements = operation.restricted
      ? chooseDataElements(operation, request.dataElements)
      : undefined
    const deadline = request.deadline ?? this.#deps.now() + (request.timeoutMs ?? this.#deadlineMs)
    const url = this.#url(await this.#regionOf(connectionId), path, search)
    const credential: Credential = operation.restricted
      ? this.#rdtCredential(connectionId, restrictedResource(operation, dataElements), deadline)
      : this.#lwaCredential(connectionId)
    // A stream is read into memory (up to the replay buffer) before the call queues for its turn, so it must
    // first get room under the process-wide budget; a string or bytes are the caller's memory already.
    let reserved = isStream(request.body) ? this.#replayBytes : 0
    if (reserved > 0 && !this.#buffered.tryReserve(reserved)) {
      throw new SpConnectError('spapi_queue_full', {
        detail: 'too many request bodies are waiting to be sent',
        retryAfterSeconds: 1,
      })
    }
    try {
      const body = await prepareBody(request.body, this.#replayBytes, this.#maxRequestBytes)
      this.#buffered.resize(reserved, body.bufferedBytes)
      reserved = body.bufferedBytes
      return await this.#send({
        url,
        method,
        operation,
        plan: operation,
        limiterKey: `${connectionId}:${operation.name}`,
        headers,
        body,
        deadline,
        signal: request.signal,
        credential,
      })
    } finally {
      // Once the answer's headers are in (or the call failed), no attempt will send the buffered bytes again.
      this.#buffered.release(reserved)
    }
  }

  /**
   * A Restricted Data Token for resources of the connection, for callers who call SP-API themselves. The same
   * set of resources (same methods, paths, data elements, target application) gets the cached RDT until a
   * minute before it expires.
   */
  async createRestrictedDataToken(
    connectionId: string,
    restrictedResources: readonly RestrictedResource[],
    targetApplication?: string,
    options: { deadline?: number } = {},
  ): Promise<RestrictedDataToken> {
    // Fail closed: a disconnected or revoked connection gets no RDT, cached or not.
    await this.#tokens.getAccessToken(connectionId)
    return this.#rdts.get(connectionId, restrictedResources, {
      targetApplication,
      deadline: options.deadline ?? this.#deps.now() + this.#deadlineMs,
    })
  }

  /** Forgets what is cached for a connection (its RDTs and region); call when it is disconnected. */
  forget(connectionId: string): void {
    this.#rdts.forget(connectionId)
    this.#regions.delete(connectionId)
  }

  /**
   * One call with a token the caller already holds (the fresh token of a callback, before any connection row
   * exists for it): no refresh, no limiter (there is no connection to count against yet), no retry.
   */
  async callWithToken(region: Region, accessToken: string, request: SpApiRequest): Promise<SpApiResponse> {
    const method = normalizeMethod(request.method)
    const { path, search } = splitPathAndQuery(request.path)
    const headers = new Headers({ accept: 'application/json' })
    if (request.body !== undefined) headers.set('content-type', request.contentType ?? 'application/json')
    let response: UpstreamResponse
    try {
      response = await this.#fetchOnce(
        this.#url(region, path, search),
        method,
        headers,
        request.body ?? null,
        accessToken,
        undefined,
      )
    } catch (failure) {
      throw failure instanceof AttemptFailed ? failure.error : failure
    }
    const body = new TextDecoder().decode(await readCapped(response.body, this.#maxResponseBytes))
    return {
      status: response.status,
      headers: returnedHeaders(response.headers),
      body,
      requestId: response.headers.get('x-amzn-requestid'),
    }
  }

  #url(region: Region, path: string, search: string): URL {
    const base = this.baseUrl(region)
    const url = new URL(`${base}${path}${search === '' ? '' : `?${search}`}`)
    // The checked path must reach Amazon as checked: no normalisation may have changed it.
    if (!url.pathname.endsWith(path))
      throw new SpConnectError('invalid_request', { detail: 'SP-API path changed' })
    return url
  }

  #lwaCredential(connectionId: string): Credential {
    let force = false
    return {
      get: async () => {
        const token = await this.#tokens.getAccessToken(
          connectionId,
          force ? { forceRefresh: true } : undefined,
        )
        force = false
        return token.accessToken
      },
      refused: () => {
        force = true
      },
    }
  }

  #rdtCredential(connectionId: string, resource: RestrictedResource, deadline: number): Credential {
    return {
      get: async () => {
        // The LWA token is checked on every call even when an RDT is cached: a disconnected connection fails here.
        await this.#tokens.getAccessToken(connectionId)
        return (await this.#rdts.get(connectionId, [resource], { deadline })).restrictedDataToken
      },
      refused: () => this.#rdts.invalidate(connectionId, [resource]),
    }
  }

  async #issueRdt(
    connectionId: string,
    body: { restrictedResources: RestrictedResource[]; targetApplication?: string },
    options: { deadline: number },
  ): Promise<{ restrictedDataToken: string; expiresIn: number }> {
    const response = await this.#send({
      url: this.#url(await this.#regionOf(connectionId), RDT_PATH, ''),
      method: 'POST',
      operation: RDT_OPERATION,
      plan: RDT_PLAN,
      limiterKey: `${connectionId}:createRestrictedDataToken`,
      headers: new Headers({ 'content-type': 'application/json', accept: 'application/json' }),
      body: await prepareBody(JSON.stringify(body), this.#replayBytes, this.#maxRequestBytes),
      deadline: options.deadline,
      signal: undefined,
      credential: this.#lwaCredential(connectionId),
    })
    const text = await response.text(ERROR_PEEK_BYTES)
    if (response.status !== 200) {
      throw new SpConnectError('restricted_data_token_failed', {
        detail: `Tokens API answered ${response.status} (request id ${response.requestId ?? 'none'})`,
      })
    }
    let parsed: { restrictedDataToken?: unknown; expiresIn?: unknown }
    try {
      parsed = JSON.parse(text) as typeof parsed
    } catch {
      parsed = {}
    }
    const { restrictedDataToken, expiresIn } = parsed ?? {}
    if (
      typeof restrictedDataToken !== 'string' ||
      restrictedDataToken === '' ||
      restrictedDataToken.length > 8192 ||
      typeof expiresIn !== 'number' ||
      !Number.isFinite(expiresIn) ||
      expiresIn <= 0
    ) {
      throw new SpConnectError('restricted_data_token_failed', { detail: 'Tokens API answer malformed' })
    }
    return { restrictedDataToken, expiresIn: Math.min(expiresIn, 24 * 3600) }
  }

  async #regionOf(connectionId: string): Promise<Region> {
    const known = this.#regions.get(connectionId)
    if (known) return known
    const row = await this.#store.getConnection(connectionId)
    if (!row) throw new SpConnectError('connection_not_found')
    this.#regions.set(connectionId, row.region)
    return row.region
  }

  /** The attempt loop: a turn from the limiter before each attempt, retries where ./retry.ts allows them. */
  async #send(a: Attempt): Promise<SpApiCallResponse> {
    const idempotent = isIdempotent(a.method, a.operation)
    let failures = 0
    let throttles = 0
    let refreshed = false
    for (;;) {
      a.signal?.throwIfAborted()
      const token = await a.credential.get()
      await this.#limiter.acquire(a.limiterKey, a.plan, {
        deadline: a.deadline,
        ...(a.signal ? { signal: a.signal } : {}),
      })
      let response: UpstreamResponse
      try {
        response = await this.#fetchOnce(a.url, a.method, a.headers, a.body.forAttempt(), token, a.signal)
      } catch (failure) {
        if (!(failure instanceof AttemptFailed)) throw failure
        const again =
          (idempotent || failure.nothingSent) && a.body.replayable() && ++failures < this.#maxAttempts
        if (!again || !(await this.#pause(backoffMs(failures - 1, this.#deps.random), a))) throw failure.error
        this.#log(a, 'retry after failure', { code: failure.error.code, attempt: failures })
        continue
      }
      await this.#observeRate(a.limiterKey, a.plan, response.headers)

      if (response.status === 429) {
        await response.body?.cancel().catch(() => {})
        const after = retryAfterMs(response.headers.get('retry-after'), this.#deps.now())
        // Without Amazon's hint the pause is one interval: of the rate Amazon reported, when it did, since the
        // table's may be faster than the seller's plan (a pause too short meets a second 429).
        const observed = this.#observed.get(a.limiterKey)
        const plan = observed === undefined ? a.plan : { rate: observed, burst: a.plan.burst }
        await this.#limiter.throttled(a.limiterKey, plan, after)
        const wait = Math.max(after ?? 0, backoffMs(throttles++, this.#deps.random))
        if (!a.body.replayable() || !(await this.#pause(wait, a))) {
          throw new SpConnectError('spapi_throttled', {
            detail: 'Amazon throttled the call and its deadline leaves no room to retry',
            retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)),
          })
        }
        this.#log(a, 'retry after 429', { attempt: throttles })
        continue
      }

      if (response.status === 403 && !refreshed && a.body.replayable()) {
        // Read the short error to see whether the token itself was refused; hand it on unchanged otherwise.
        const peeked = await readCapped(response.body, ERROR_PEEK_BYTES).catch(() => undefined)
        if (peeked !== undefined && TOKEN_REJECTED.test(new TextDecoder().decode(peeked))) {
          refreshed = true
          a.credential.refused()
          this.#log(a, 'retry with a fresh token', {})
          continue
        }
        return this.#wrap(
          a,
          response,
          peeked === undefined ? null : streamOf(peeked),
          peeked?.byteLength ?? 0,
        )
      }

      if (response.status >= 500 && idempotent && a.body.replayable() && failures + 1 < this.#maxAttempts) {
        const wait = backoffMs(failures, this.#deps.random)
        if (this.#deps.now() + wait <= a.deadline) {
          failures++
          await response.body?.cancel().catch(() => {})
          await this.#pause(wait, a)
          this.#log(a, 'retry after 5xx', { status: response.status, attempt: failures })
          continue
        }
      }
      return this.#wrap(a, response, response.body, declaredLength(response))
    }
  }

  /** Waits `ms` unless that passes the deadline (then false, without waiting). */
  async #pause(ms: number, a: Attempt): Promise<boolean> {
    if (this.#deps.now() + ms > a.deadline) return false
    if (ms > 0) await this.#deps.sleep(ms, a.signal)
    return true
  }

  async #observeRate(key: string, plan: RatePlan, headers: UpstreamResponse['headers']): Promise<void> {
    const rate = parseRateLimit(headers.get('x-amzn-ratelimit-limit'))
    if (rate === undefined || this.#observed.get(key) === rate) return
    if (this.#observed.size > 100_000) this.#observed.clear()
    this.#observed.set(key, rate)
    try {
      await this.#limiter.observedRate(key, plan, rate)
    } catch (error) {
      // A correction that could not be stored must not fail the call that brought it.
      this.#deps.logger.warn({ key, errorName: (error as Error).name }, 'spapi rate not recorded')
    }
  }

  #log(a: Attempt, msg: string, fields: object): void {
    this.#deps.logger.info({ operation: a.operation.name, method: a.method, ...fields }, `spapi ${msg}`)
  }

  #wrap(
    a: Attempt,
    response: UpstreamResponse,
    body: ReadableStream<Uint8Array> | null,
    bodyLength: number | null,
  ): SpApiCallResponse {
    const maxBytes = this.#maxResponseBytes
    return {
      status: response.status,
      headers: returnedHeaders(response.headers),
      requestId: response.headers.get('x-amzn-requestid'),
      operation: a.operation.name,
      body,
      bodyLength: body === null ? 0 : bodyLength,
      text: async (cap = maxBytes) => new TextDecoder().decode(await readCapped(body, cap)),
    }
  }

  /** One HTTP exchange up to the response headers; the body is left to stream. */
  async #fetchOnce(
    url: URL,
    method: string,
    given: Headers,
    body: string | Uint8Array | ReadableStream<Uint8Array> | null,
    accessToken: string,
    signal: AbortSignal | undefined,
  ): Promise<UpstreamResponse> {
    // A plain record: fetch builds its own header list anyway, node:http takes one as it is.
    const headers: Record<string, string> = {}
    for (const [name, value] of given) headers[name] = value
    headers['x-amz-access-token'] = accessToken
    headers['user-agent'] = this.#userAgent
    headers['accept'] ??= 'application/json'
    if (body !== null) headers['content-type'] ??= 'application/json'
    const controller = new AbortController()
    const onAbort = () => controller.abort(signal?.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, this.#attemptTimeoutMs)
    try {
      return await this.#transport({ url, method, headers, body, signal: controller.signal })
    } catch (cause) {
      if (signal?.aborted) throw signal.reason
      if (timedOut) {
        throw new AttemptFailed(
          new SpConnectError('spapi_timeout', { cause, detail: `${method} timed out`, retryAfterSeconds: 1 }),
          false,
        )
      }
      if (cause instanceof SpConnectError) throw new AttemptFailed(cause, false)
      throw new AttemptFailed(
        new SpConnectError('spapi_unreachable', { cause, detail: `${method} failed to connect` }),
        failedBeforeConnecting(cause),
      )
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Content-Length, when it is the length of the body as read: transports decode an encoded body. */
function declaredLength(response: UpstreamResponse): number | null {
  const encoding = response.headers.get('content-encoding')
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') return null
  const declared = response.headers.get('content-length')
  if (declared === null || !/^\d{1,15}$/.test(declared)) return null
  return Number(declared)
}

function normalizeMethod(method: string): string {
  const upper = typeof method === 'string' ? method.toUpperCase() : ''
  if (!METHODS.has(upper)) throw new SpConnectError('invalid_request', { detail: 'unsupported HTTP method' })
  return upper
}

function isStream(body: SpApiBody): body is ReadableStream<Uint8Array> {
  return body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)
}

/**
 * The resource an RDT must cover for a call of `operation`: its path template (`/orders/v0/orders/{orderId}`),
 * which Amazon reads as "any" (spapi-facts.md §6.3). One RDT per connection, operation and data elements then
 * serves every id: walking N orders costs one Tokens API call, not N under its 1 rps plan, and the cache holds
 * one small key per operation instead of one per id.
 */
function restrictedResource(
  operation: SpApiOperation,
  dataElements: string[] | undefined,
): RestrictedResource {
  if (!(RESTRICTED_METHODS as readonly string[]).includes(operation.method))
    throw new SpConnectError('restricted_data_token_failed', { detail: 'no RDT for that method' })
  return {
    method: operation.method as RestrictedResource['method'],
    path: operation.path,
    ...(dataElements === undefined ? {} : { dataElements }),
  }
}

/** The caller's data elements (each one the operation allows), or all it allows. */
function chooseDataElements(
  operation: SpApiOperation,
  asked: readonly string[] | undefined,
): string[] | undefined {
  const allowed = operation.restricted?.dataElements
  if (asked === undefined) return allowed && allowed.length > 0 ? [...allowed] : undefined
  for (const element of asked) {
    if (!(DATA_ELEMENTS as readonly string[]).includes(element) || !allowed?.includes(element))
      throw new SpConnectError('invalid_request', { detail: 'dataElements not allowed for this operation' })
  }
  return asked.length > 0 ? [...new Set(asked)].sort() : undefined
}
