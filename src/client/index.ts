/**
 * `sp-connect/client`: a typed client for the `/v1` HTTP API, for the application's backend.
 *
 * ```ts
 * import { createClient, SpConnectApiError } from 'sp-connect/client'
 * const sp = createClient({ baseUrl: 'https://connect.example.com', apiKey: process.env.SP_CONNECT_API_KEY })
 * const { access_token } = await sp.connections.getAccessToken('con_…')
 * ```
 *
 * Its types come from the zod schemas the server validates with (src/api-schemas/), imported as types only, so
 * at runtime it needs nothing but `fetch`. {@link CLIENT_OPERATIONS} names the operation behind each method; a
 * test checks every one against the OpenAPI document (`GET /v1/openapi.json`), so they cannot drift.
 */
import type { ApiKey, ApiKeyList, CreateApiKeyBody, CreatedApiKey } from '../api-schemas/api-keys.ts'
import type { ErrorResponse } from '../api-schemas/common.ts'
import type { ConnectSession, ConnectSessionBody } from '../api-schemas/connect-sessions.ts'
import type {
  AccessTokenResponse,
  Connection,
  ConnectionList,
  GrantlessTokenBody,
  ListConnectionsQuery,
} from '../api-schemas/connections.ts'
import type {
  DeliveryList,
  EventList,
  EventWithDeliveries,
  ListDeliveriesQuery,
  ListEventsQuery,
} from '../api-schemas/events.ts'
import type {
  ApproveLoginRequestBody,
  LoginRequest,
  LoginRequestApproval,
} from '../api-schemas/login-requests.ts'
import type { NotificationBody, NotificationResult } from '../api-schemas/notifications.ts'
import type { RestrictedDataTokenRequest, RestrictedDataTokenResponse } from '../api-schemas/spapi.ts'
import type { ErrorCode } from '../domain/errors.ts'

export type {
  AccessTokenResponse,
  ApiKey,
  ApiKeyList,
  ApproveLoginRequestBody,
  Connection,
  ConnectionList,
  ConnectSession,
  ConnectSessionBody,
  CreateApiKeyBody,
  CreatedApiKey,
  DeliveryList,
  ErrorCode,
  EventList,
  EventWithDeliveries,
  GrantlessTokenBody,
  ListConnectionsQuery,
  ListDeliveriesQuery,
  ListEventsQuery,
  LoginRequest,
  LoginRequestApproval,
  NotificationBody,
  NotificationResult,
  RestrictedDataTokenRequest,
  RestrictedDataTokenResponse,
}

/** The `/v1` operation behind each client method: operation id → HTTP method and path (`:name` parameters). */
export const CLIENT_OPERATIONS = {
  getOpenApiDocument: { method: 'GET', path: '/v1/openapi.json' },
  listConnections: { method: 'GET', path: '/v1/connections' },
  getConnection: { method: 'GET', path: '/v1/connections/:id' },
  listConnectionEvents: { method: 'GET', path: '/v1/connections/:id/events' },
  disconnectConnection: { method: 'DELETE', path: '/v1/connections/:id' },
  getAccessToken: { method: 'POST', path: '/v1/connections/:id/access-token' },
  getGrantlessToken: { method: 'POST', path: '/v1/grantless-tokens' },
  createConnectSession: { method: 'POST', path: '/v1/connect-sessions' },
  getLoginRequest: { method: 'GET', path: '/v1/login-requests/:id' },
  approveLoginRequest: { method: 'POST', path: '/v1/login-requests/:id/approve' },
  rejectLoginRequest: { method: 'POST', path: '/v1/login-requests/:id/reject' },
  createApiKey: { method: 'POST', path: '/v1/api-keys' },
  listApiKeys: { method: 'GET', path: '/v1/api-keys' },
  revokeApiKey: { method: 'DELETE', path: '/v1/api-keys/:id' },
  listEvents: { method: 'GET', path: '/v1/events' },
  getEvent: { method: 'GET', path: '/v1/events/:id' },
  listWebhookDeliveries: { method: 'GET', path: '/v1/webhook-deliveries' },
  postNotification: { method: 'POST', path: '/v1/notifications' },
  createRestrictedDataToken: { method: 'POST', path: '/v1/connections/:id/restricted-data-tokens' },
  callSpApiGet: { method: 'GET', path: '/v1/connections/:id/spapi/*' },
  callSpApiPost: { method: 'POST', path: '/v1/connections/:id/spapi/*' },
  callSpApiPut: { method: 'PUT', path: '/v1/connections/:id/spapi/*' },
  callSpApiPatch: { method: 'PATCH', path: '/v1/connections/:id/spapi/*' },
  callSpApiDelete: { method: 'DELETE', path: '/v1/connections/:id/spapi/*' },
} as const satisfies Record<string, { method: string; path: string }>

export type OperationId = keyof typeof CLIENT_OPERATIONS

/** `code` when the answer was not sp-connect's error body (a proxy's error page, say). */
export const UNEXPECTED_RESPONSE = 'unexpected_response'

/** A `/v1` call that failed: the service's stable error `code` and fixed `message`, and its request id. */
export class SpConnectApiError extends Error {
  readonly status: number
  readonly code: ErrorCode | typeof UNEXPECTED_RESPONSE
  /** The service's `x-request-id` for this call (quote it to operators), or null if it sent none. */
  readonly requestId: string | null
  /** For `invalid_request`: which parameters were invalid. */
  readonly detail: string | undefined
  /** From `Retry-After`, on 429 and 503 answers. */
  readonly retryAfterSeconds: number | undefined

  constructor(init: {
    status: number
    code: ErrorCode | typeof UNEXPECTED_RESPONSE
    message: string
    requestId: string | null
    detail?: string | undefined
    retryAfterSeconds?: number | undefined
  }) {
    super(init.message)
    this.name = 'SpConnectApiError'
    this.status = init.status
    this.code = init.code
    this.requestId = init.requestId
    this.detail = init.detail
    this.retryAfterSeconds = init.retryAfterSeconds
  }
}

export interface ClientOptions {
  /** Where the service is reached: its public origin plus any base path (`https://example.com/amazon`). */
  readonly baseUrl: string
  /** An sp-connect API key, sent as `Authorization: Bearer …`. */
  readonly apiKey: string
  /** The `fetch` to use; the global one by default. */
  readonly fetch?: typeof fetch
}

interface CallInput {
  readonly params?: Readonly<Record<string, string>>
  /** What replaces a trailing `*` (the SP-API path). */
  readonly rest?: string
  readonly query?: Readonly<Record<string, string | number | undefined>>
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
}

/** The methods the SP-API passthrough takes, with the operation behind each. */
const SPAPI_OPERATIONS = {
  GET: 'callSpApiGet',
  POST: 'callSpApiPost',
  PUT: 'callSpApiPut',
  PATCH: 'callSpApiPatch',
  DELETE: 'callSpApiDelete',
} as const satisfies Record<string, OperationId>

/** One SP-API call through sp-connect. */
export interface SpApiRequest {
  readonly method: keyof typeof SPAPI_OPERATIONS
  /** The SP-API path, segments already encoded, e.g. `/orders/v0/orders`. */
  readonly path: string
  readonly query?: Readonly<Record<string, string | number | undefined>>
  /** A JSON body for POST, PUT and PATCH. */
  readonly body?: unknown
  /** E.g. `x-sp-connect-data-elements: buyerInfo` for a restricted operation. */
  readonly headers?: Readonly<Record<string, string>>
}

export function createClient(options: ClientOptions) {
  const baseUrl = options.baseUrl.replace(/\/+$/, '')
  const doFetch = options.fetch ?? globalThis.fetch
  if (typeof doFetch !== 'function')
    throw new TypeError('createClient: no fetch available; pass options.fetch')

  function send(operation: OperationId, input: CallInput = {}): Promise<Response> {
    const { method, path } = CLIENT_OPERATIONS[operation]
    const filled = path
      .replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
        const value = input.params?.[name]
        if (value === undefined) throw new TypeError(`createClient: ${operation} needs ${name}`)
        return encodeURIComponent(value)
      })
      .replace(/\*$/, () => (input.rest ?? '').replace(/^\/+/, ''))
    const search = new URLSearchParams()
    for (const [name, value] of Object.entries(input.query ?? {})) {
      if (value !== undefined) search.set(name, String(value))
    }
    const url = `${baseUrl}${filled}${search.size > 0 ? `?${search}` : ''}`
    const headers: Record<string, string> = { accept: 'application/json', ...input.headers }
    // The document is public; never send the key where it is not needed.
    if (operation !== 'getOpenApiDocument') headers['authorization'] = `Bearer ${options.apiKey}`
    if (input.body !== undefined) headers['content-type'] = 'application/json'
    return doFetch(url, {
      method,
      headers,
      ...(input.body !== undefined ? { body: JSON.stringify(input.body) } : {}),
    })
  }

  async function call<T>(operation: OperationId, input: CallInput = {}): Promise<T> {
    const response = await send(operation, input)
    if (!response.ok) throw await apiError(response)
    return (await response.json()) as T
  }

  const id = (value: string) => ({ params: { id: value } })

  return {
    /** `GET /v1/openapi.json`: the API's OpenAPI 3.1 document. */
    getOpenApiDocument: () => call<Record<string, unknown>>('getOpenApiDocument'),
    connections: {
      /** One page of connections, oldest first; pass `next_after` as `after` for the next. */
      list: (query: ListConnectionsQuery = {}) => call<ConnectionList>('listConnections', { query }),
      get: (connectionId: string) => call<Connection>('getConnection', id(connectionId)),
      /** The connection's latest events, newest first. */
      listEvents: (connectionId: string) => call<EventList>('listConnectionEvents', id(connectionId)),
      disconnect: (connectionId: string) => call<Connection>('disconnectConnection', id(connectionId)),
      /** A fresh LWA access token for calling SP-API as this seller. */
      getAccessToken: (connectionId: string) => call<AccessTokenResponse>('getAccessToken', id(connectionId)),
    },
    tokens: {
      /** A grantless LWA access token for `scope` (all-tenant keys only). */
      getGrantless: (body: GrantlessTokenBody) => call<AccessTokenResponse>('getGrantlessToken', { body }),
    },
    connectSessions: {
      /** A single-use connect link for a tenant, or (`connection_id`) to re-authorize a connection. */
      create: (body: ConnectSessionBody) => call<ConnectSession>('createConnectSession', { body }),
    },
    loginRequests: {
      get: (loginRequestId: string) => call<LoginRequest>('getLoginRequest', id(loginRequestId)),
      approve: (loginRequestId: string, body: ApproveLoginRequestBody) =>
        call<LoginRequestApproval>('approveLoginRequest', { ...id(loginRequestId), body }),
      reject: (loginRequestId: string) => call<LoginRequest>('rejectLoginRequest', id(loginRequestId)),
    },
    apiKeys: {
      /** Creates a key within the calling key's scopes and tenants; its value is in this answer only. */
      create: (body: CreateApiKeyBody) => call<CreatedApiKey>('createApiKey', { body }),
      list: () => call<ApiKeyList>('listApiKeys'),
      revoke: (keyId: string) => call<ApiKey>('revokeApiKey', id(keyId)),
    },
    events: {
      list: (query: ListEventsQuery = {}) => call<EventList>('listEvents', { query }),
      get: (eventId: string) => call<EventWithDeliveries>('getEvent', id(eventId)),
      listDeliveries: (query: ListDeliveriesQuery = {}) =>
        call<DeliveryList>('listWebhookDeliveries', { query }),
    },
    notifications: {
      /** Forwards an SP-API notification (an SQS message body, parsed). */
      post: (body: NotificationBody) => call<NotificationResult>('postNotification', { body }),
    },
    spapi: {
      /**
       * Calls SP-API as the connection's seller. Answers with the raw `Response`, not thrown on failure:
       * Amazon's answers, errors included, pass through as they are; sp-connect's own refusals are its
       * `{error}` bodies (see {@link readApiError}).
       */
      call: (connectionId: string, request: SpApiRequest) =>
        send(SPAPI_OPERATIONS[request.method], {
          ...id(connectionId),
          rest: request.path,
          ...(request.query ? { query: request.query } : {}),
          ...(request.body !== undefined ? { body: request.body } : {}),
          ...(request.headers ? { headers: request.headers } : {}),
        }),
      /** A Restricted Data Token, for callers who call SP-API themselves. */
      createRestrictedDataToken: (connectionId: string, body: RestrictedDataTokenRequest) =>
        call<RestrictedDataTokenResponse>('createRestrictedDataToken', { ...id(connectionId), body }),
    },
  }
}

export type SpConnectClient = ReturnType<typeof createClient>

/**
 * The error a failed answer stands for: sp-connect's `{error: {code, message}}`, or `unexpected_response` for
 * anything else (Amazon's own SP-API errors included). Reads the body.
 */
export function readApiError(response: Response): Promise<SpConnectApiError> {
  return apiError(response)
}

async function apiError(response: Response): Promise<SpConnectApiError> {
  const requestId = response.headers.get('x-request-id')
  const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN)
  const retryAfterSeconds = Number.isFinite(retryAfter) ? retryAfter : undefined
  const text = await response.text().catch(() => '')
  let body: Partial<ErrorResponse> | undefined
  try {
    body = JSON.parse(text) as Partial<ErrorResponse>
  } catch {
    body = undefined
  }
  const error = body?.error
  if (error && typeof error.code === 'string' && typeof error.message === 'string') {
    return new SpConnectApiError({
      status: response.status,
      code: error.code,
      message: error.message,
      requestId,
      detail: error.detail,
      retryAfterSeconds,
    })
  }
  return new SpConnectApiError({
    status: response.status,
    code: UNEXPECTED_RESPONSE,
    message: `sp-connect answered HTTP ${response.status} without an error body`,
    requestId,
    retryAfterSeconds,
  })
}
