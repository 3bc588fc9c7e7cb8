/**
 * The OpenAPI 3.1 document of `/v1`, generated from the zod schemas the routes validate with
 * (src/api-schemas/) through zod's own `z.toJSONSchema`, so the document cannot say one thing while the
 * server checks another. {@link API_OPERATIONS} lists every `/v1` route; a test compares it with the routes the
 * Hono app really has mounted, both ways (docs/decisions/0011-openapi.md).
 */
import { z } from 'zod'
import {
  apiKeyListSchema,
  apiKeySchema,
  createApiKeyBodySchema,
  createdApiKeySchema,
} from '../api-schemas/api-keys.ts'
import { errorCodeSchema, errorResponseSchema } from '../api-schemas/common.ts'
import {
  connectSessionBodySchema,
  connectSessionSchema,
  newConnectionBodySchema,
  reconnectBodySchema,
} from '../api-schemas/connect-sessions.ts'
import {
  accessTokenSchema,
  connectionListSchema,
  connectionSchema,
  grantlessTokenBodySchema,
  listConnectionsQuerySchema,
} from '../api-schemas/connections.ts'
import {
  deliveryListSchema,
  deliverySchema,
  eventListSchema,
  eventSchema,
  eventWithDeliveriesSchema,
  listDeliveriesQuerySchema,
  listEventsQuerySchema,
} from '../api-schemas/events.ts'
import {
  approveLoginRequestBodySchema,
  loginRequestApprovalSchema,
  loginRequestSchema,
} from '../api-schemas/login-requests.ts'
import { notificationBodySchema, notificationResultSchema } from '../api-schemas/notifications.ts'
import { restrictedDataTokenRequestSchema, restrictedDataTokenResponseSchema } from '../api-schemas/spapi.ts'
import { ERROR_CODES, type ErrorCode } from '../domain/errors.ts'
import type { Scope } from '../domain/scopes.ts'

type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete'

/** One `/v1` operation: what the route accepts and answers, and the error codes it is known to give. */
interface ApiOperation {
  readonly operationId: string
  readonly method: HttpMethod
  /** The path as mounted in Hono (`/v1/connections/:id`); `{id}` in the document. */
  readonly path: string
  readonly tag: string
  readonly summary: string
  readonly description?: string
  /** The scope the key needs; null for the one public operation (the document itself). */
  readonly scope: Scope | null
  /** Only keys for every tenant may call it. */
  readonly allTenants?: boolean
  readonly pathParams?: Readonly<Record<string, string>>
  readonly query?: z.ZodObject
  readonly body?: z.ZodType
  readonly response: {
    readonly status: 200 | 201 | 202
    readonly description: string
    readonly schema: z.ZodType
    /** Answered with `cache-control: no-store` (it carries a secret). */
    readonly noStore?: boolean
  }
  /** Codes this operation answers beyond those every authenticated operation may ({@link COMMON_ERRORS}). */
  readonly errors: readonly ErrorCode[]
}

/** Every authenticated `/v1` operation may answer these. */
const COMMON_ERRORS: readonly ErrorCode[] = [
  'invalid_request',
  'unauthenticated',
  'forbidden',
  'rate_limited',
  'store_unavailable',
  'internal',
]

/** What getting an LWA access token may fail with (src/core/tokens). */
const LWA_ERRORS: readonly ErrorCode[] = [
  'lwa_invalid_grant',
  'lwa_invalid_client',
  'lwa_unauthorized_client',
  'lwa_invalid_request',
  'lwa_invalid_scope',
  'lwa_access_denied',
  'lwa_unsupported_grant_type',
  'lwa_server_error',
  'lwa_temporarily_unavailable',
  'lwa_throttled',
  'lwa_unreachable',
  'lwa_unexpected_response',
  'lwa_error',
]

const CONNECTION_ID = { id: 'The connection id (`con_…`).' }
const LOGIN_REQUEST_ID = { id: 'The `sp_connect_login` value the app’s sign-in page received.' }

/** Named schemas of request bodies, converted as the server reads them (`io: 'input'`: defaults optional). */
const REQUEST_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  ConnectSessionRequest: connectSessionBodySchema,
  NewConnectionSessionRequest: newConnectionBodySchema,
  ReconnectSessionRequest: reconnectBodySchema,
  GrantlessTokenRequest: grantlessTokenBodySchema,
  ApproveLoginRequestRequest: approveLoginRequestBodySchema,
  CreateApiKeyRequest: createApiKeyBodySchema,
  Notification: notificationBodySchema,
  RestrictedDataTokenRequest: restrictedDataTokenRequestSchema,
}

/** Named schemas of responses, converted as the server writes them (`io: 'output'`). */
const RESPONSE_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  ErrorCode: errorCodeSchema,
  ErrorResponse: errorResponseSchema,
  Connection: connectionSchema,
  ConnectionList: connectionListSchema,
  AccessToken: accessTokenSchema,
  ConnectSession: connectSessionSchema,
  LoginRequest: loginRequestSchema,
  LoginRequestApproval: loginRequestApprovalSchema,
  ApiKey: apiKeySchema,
  CreatedApiKey: createdApiKeySchema,
  ApiKeyList: apiKeyListSchema,
  Event: eventSchema,
  EventList: eventListSchema,
  EventWithDeliveries: eventWithDeliveriesSchema,
  WebhookDelivery: deliverySchema,
  WebhookDeliveryList: deliveryListSchema,
  NotificationResult: notificationResultSchema,
  RestrictedDataToken: restrictedDataTokenResponseSchema,
}

/** The document itself has no zod schema: it is described, not validated. */
const openApiDocumentSchema = z
  .record(z.string(), z.unknown())
  .meta({ description: 'An OpenAPI 3.1 document.' })

/** Amazon's answer, passed through: any status and body; sp-connect adds `cache-control: no-store`. */
const spapiAnswerSchema = z.unknown()

/** sp-connect's own refusals of an SP-API call, before or instead of Amazon's answer. */
const SPAPI_ERRORS: readonly ErrorCode[] = [
  'connection_not_found',
  'connection_disconnected',
  'connection_needs_reauthorization',
  'payload_too_large',
  'spapi_operation_unknown',
  'spapi_throttled',
  'spapi_queue_full',
  'spapi_unreachable',
  'spapi_timeout',
  'restricted_data_token_failed',
  'lease_timeout',
  ...LWA_ERRORS,
]

/** The passthrough, one operation per method the route answers (it is mounted for any method). */
const SPAPI_PASSTHROUGH: readonly ApiOperation[] = (['get', 'post', 'put', 'patch', 'delete'] as const).map(
  (method) => ({
    operationId: `callSpApi${method[0]?.toUpperCase()}${method.slice(1)}`,
    method,
    path: '/v1/connections/:id/spapi/*',
    tag: 'SP-API',
    summary: `Call SP-API (${method.toUpperCase()}) as this seller`,
    description:
      'Known SP-API operations only, at the connection’s regional endpoint, within Amazon’s usage plan, with a Restricted Data Token for restricted operations (narrow it with `x-sp-connect-data-elements`). Amazon’s answer passes through, errors included; the API key never reaches Amazon.',
    scope: 'tokens',
    pathParams: { ...CONNECTION_ID, path: 'The SP-API path and its query, e.g. `orders/v0/orders`.' },
    ...(method === 'get' || method === 'delete' ? {} : { body: spapiAnswerSchema }),
    response: {
      status: 200,
      description: 'Amazon’s answer (any status).',
      schema: spapiAnswerSchema,
      noStore: true,
    },
    errors: SPAPI_ERRORS,
  }),
)

/** Every `/v1` route the service mounts. */
export const API_OPERATIONS: readonly ApiOperation[] = [
  {
    operationId: 'getOpenApiDocument',
    method: 'get',
    path: '/v1/openapi.json',
    tag: 'Meta',
    summary: 'This document',
    description: 'Public (no API key): it describes shapes only, never data or secrets.',
    scope: null,
    response: { status: 200, description: 'The OpenAPI 3.1 document.', schema: openApiDocumentSchema },
    errors: [],
  },
  {
    operationId: 'listConnections',
    method: 'get',
    path: '/v1/connections',
    tag: 'Connections',
    summary: 'List connections',
    description:
      'Oldest first, a page at a time. A tenant-scoped key sees its tenants’ connections only; another tenant’s `tenant_id` gives an empty page.',
    scope: 'read',
    query: listConnectionsQuerySchema,
    response: { status: 200, description: 'One page of connections.', schema: connectionListSchema },
    errors: [],
  },
  {
    operationId: 'getConnection',
    method: 'get',
    path: '/v1/connections/:id',
    tag: 'Connections',
    summary: 'Get a connection',
    scope: 'read',
    pathParams: CONNECTION_ID,
    response: { status: 200, description: 'The connection.', schema: connectionSchema },
    errors: ['connection_not_found'],
  },
  {
    operationId: 'listConnectionEvents',
    method: 'get',
    path: '/v1/connections/:id/events',
    tag: 'Connections',
    summary: 'List a connection’s events',
    description: 'The latest 200, newest first.',
    scope: 'read',
    pathParams: CONNECTION_ID,
    response: { status: 200, description: 'The connection’s events.', schema: eventListSchema },
    errors: ['connection_not_found'],
  },
  {
    operationId: 'disconnectConnection',
    method: 'delete',
    path: '/v1/connections/:id',
    tag: 'Connections',
    summary: 'Disconnect a connection',
    description: 'Forgets its tokens; the seller has to authorize again to reconnect.',
    scope: 'manage',
    pathParams: CONNECTION_ID,
    response: { status: 200, description: 'The connection, disconnected.', schema: connectionSchema },
    errors: ['connection_not_found'],
  },
  {
    operationId: 'getAccessToken',
    method: 'post',
    path: '/v1/connections/:id/access-token',
    tag: 'Tokens',
    summary: 'Get an access token for a connection',
    description: 'A fresh LWA access token for calling SP-API as this seller (refreshed when due).',
    scope: 'tokens',
    pathParams: CONNECTION_ID,
    response: { status: 200, description: 'The token.', schema: accessTokenSchema, noStore: true },
    errors: [
      'connection_not_found',
      'connection_disconnected',
      'connection_needs_reauthorization',
      'lease_timeout',
      'key_unavailable',
      'decryption_failed',
      ...LWA_ERRORS,
    ],
  },
  {
    operationId: 'getGrantlessToken',
    method: 'post',
    path: '/v1/grantless-tokens',
    tag: 'Tokens',
    summary: 'Get a grantless access token',
    description: 'For operations that act for the application, not a seller.',
    scope: 'tokens',
    allTenants: true,
    body: grantlessTokenBodySchema,
    response: { status: 200, description: 'The token.', schema: accessTokenSchema, noStore: true },
    errors: LWA_ERRORS,
  },
  {
    operationId: 'createConnectSession',
    method: 'post',
    path: '/v1/connect-sessions',
    tag: 'Connect sessions',
    summary: 'Create a connect link',
    description:
      'A single-use link to connect a seller account for a tenant, or (`connection_id`) to re-authorize one connection the tenant owns.',
    scope: 'manage',
    body: connectSessionBodySchema,
    response: { status: 201, description: 'The link.', schema: connectSessionSchema },
    errors: ['connection_not_found'],
  },
  {
    operationId: 'getLoginRequest',
    method: 'get',
    path: '/v1/login-requests/:id',
    tag: 'Login requests',
    summary: 'Describe a login request',
    description: 'What Amazon asked for (seller, region, status), for the app’s sign-in page.',
    scope: 'manage',
    pathParams: LOGIN_REQUEST_ID,
    response: { status: 200, description: 'The request.', schema: loginRequestSchema },
    errors: ['login_request_not_found'],
  },
  {
    operationId: 'approveLoginRequest',
    method: 'post',
    path: '/v1/login-requests/:id/approve',
    tag: 'Login requests',
    summary: 'Approve a login request for a tenant',
    description: 'The app signed its user in; send the browser to `redirect_url`.',
    scope: 'manage',
    pathParams: LOGIN_REQUEST_ID,
    body: approveLoginRequestBodySchema,
    response: { status: 200, description: 'Where to send the browser.', schema: loginRequestApprovalSchema },
    errors: ['login_request_not_found', 'login_request_closed', 'connection_tenant_conflict'],
  },
  {
    operationId: 'rejectLoginRequest',
    method: 'post',
    path: '/v1/login-requests/:id/reject',
    tag: 'Login requests',
    summary: 'Reject a login request',
    scope: 'manage',
    pathParams: LOGIN_REQUEST_ID,
    response: { status: 200, description: 'The request, rejected.', schema: loginRequestSchema },
    errors: ['login_request_not_found', 'login_request_closed'],
  },
  {
    operationId: 'createApiKey',
    method: 'post',
    path: '/v1/api-keys',
    tag: 'API keys',
    summary: 'Create an API key',
    description: 'Within the calling key’s own scopes and tenants. The key is shown in this answer only.',
    scope: 'manage',
    body: createApiKeyBodySchema,
    response: {
      status: 201,
      description: 'The key, with its value.',
      schema: createdApiKeySchema,
      noStore: true,
    },
    errors: [],
  },
  {
    operationId: 'listApiKeys',
    method: 'get',
    path: '/v1/api-keys',
    tag: 'API keys',
    summary: 'List API keys',
    description: 'Keys within the calling key’s scopes and tenants; bootstrap keys are not listed.',
    scope: 'manage',
    response: { status: 200, description: 'The keys, without values.', schema: apiKeyListSchema },
    errors: [],
  },
  {
    operationId: 'revokeApiKey',
    method: 'delete',
    path: '/v1/api-keys/:id',
    tag: 'API keys',
    summary: 'Revoke an API key',
    scope: 'manage',
    pathParams: { id: 'The key id (`key_…`).' },
    response: { status: 200, description: 'The key, revoked.', schema: apiKeySchema },
    errors: ['not_found'],
  },
  {
    operationId: 'listEvents',
    method: 'get',
    path: '/v1/events',
    tag: 'Events',
    summary: 'List events',
    description: 'Newest first. A tenant-scoped key must name a `connection_id` it can see.',
    scope: 'read',
    query: listEventsQuerySchema,
    response: { status: 200, description: 'The events.', schema: eventListSchema },
    errors: ['connection_not_found'],
  },
  {
    operationId: 'getEvent',
    method: 'get',
    path: '/v1/events/:id',
    tag: 'Events',
    summary: 'Get an event and its webhook deliveries',
    scope: 'read',
    pathParams: { id: 'The event id (`evt_…`).' },
    response: { status: 200, description: 'The event.', schema: eventWithDeliveriesSchema },
    errors: ['not_found'],
  },
  {
    operationId: 'listWebhookDeliveries',
    method: 'get',
    path: '/v1/webhook-deliveries',
    tag: 'Events',
    summary: 'List webhook deliveries',
    description: 'A tenant-scoped key must name an `event_id` it can see.',
    scope: 'read',
    query: listDeliveriesQuerySchema,
    response: { status: 200, description: 'The deliveries.', schema: deliveryListSchema },
    errors: ['not_found'],
  },
  {
    operationId: 'postNotification',
    method: 'post',
    path: '/v1/notifications',
    tag: 'Notifications',
    summary: 'Forward an SP-API notification',
    description:
      'The SQS message body as Amazon wrote it, any content type, at most 64 KiB. Delete the SQS message on 2xx only.',
    scope: 'manage',
    allTenants: true,
    body: notificationBodySchema,
    response: { status: 202, description: 'What was done with it.', schema: notificationResultSchema },
    errors: ['payload_too_large', 'notification_client_mismatch'],
  },
  {
    operationId: 'createRestrictedDataToken',
    method: 'post',
    path: '/v1/connections/:id/restricted-data-tokens',
    tag: 'SP-API',
    summary: 'Get a Restricted Data Token',
    description:
      'For callers who call SP-API themselves. Audited as `token.issued` with `kind: restricted_data_token`.',
    scope: 'tokens',
    pathParams: CONNECTION_ID,
    body: restrictedDataTokenRequestSchema,
    response: {
      status: 200,
      description: 'The token.',
      schema: restrictedDataTokenResponseSchema,
      noStore: true,
    },
    errors: [
      'connection_not_found',
      'connection_disconnected',
      'connection_needs_reauthorization',
      'restricted_data_token_failed',
      'spapi_unreachable',
      'spapi_timeout',
      'spapi_throttled',
      'lease_timeout',
      ...LWA_ERRORS,
    ],
  },
  ...SPAPI_PASSTHROUGH,
]

/** `/v1/connections/:id` → `/v1/connections/{id}`; a trailing `*` becomes `{path}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\/\*$/, '/{path}')
}

type JsonObject = Record<string, unknown>

/**
 * zod writes `additionalProperties: false` for every object in `output` mode; the API promises only the fields
 * it documents, so clients must tolerate new ones: only `.strict()` objects (request bodies) stay closed.
 */
function openResponseObjects(ctx: { zodSchema: z.core.$ZodTypes; jsonSchema: JsonObject }): void {
  const def = ctx.zodSchema._zod.def
  if (
    def.type === 'object' &&
    def.catchall === undefined &&
    ctx.jsonSchema['additionalProperties'] === false
  ) {
    delete ctx.jsonSchema['additionalProperties']
  }
}

function componentSchemas(named: Readonly<Record<string, z.ZodType>>, io: 'input' | 'output'): JsonObject {
  const registry = z.registry<{ id: string }>()
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id })
  const { schemas } = z.toJSONSchema(registry, {
    io,
    target: 'draft-2020-12',
    unrepresentable: 'throw',
    uri: (id) => `#/components/schemas/${id}`,
    ...(io === 'output' ? { override: openResponseObjects } : {}),
  })
  // Each component is a plain JSON Schema inside the document: no per-schema dialect or id of its own.
  for (const schema of Object.values(schemas)) {
    delete schema.$schema
    delete schema.$id
  }
  return schemas
}

/** A `$ref` to the component named for `schema`, which must be in `named`. */
function refTo(schema: z.ZodType, named: Readonly<Record<string, z.ZodType>>): JsonObject {
  const entry = Object.entries(named).find(([, s]) => s === schema)
  if (!entry) throw new Error('openapi: a schema used by an operation has no component name')
  return { $ref: `#/components/schemas/${entry[0]}` }
}

function queryParameters(query: z.ZodObject): JsonObject[] {
  const json = z.toJSONSchema(query, { io: 'input', target: 'draft-2020-12', unrepresentable: 'throw' })
  const properties = (json.properties ?? {}) as Record<string, JsonObject>
  const required = new Set(json.required ?? [])
  return Object.entries(properties).map(([name, schema]) => {
    const { description, ...rest } = schema
    return {
      name,
      in: 'query',
      required: required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    }
  })
}

function pathParameters(op: ApiOperation): JsonObject[] {
  const names = [...op.path.matchAll(/:([A-Za-z0-9_]+)|\*$/g)].map((m) => m[1] ?? 'path')
  return names.map((name) => ({
    name,
    in: 'path',
    required: true,
    ...(op.pathParams?.[name] ? { description: op.pathParams[name] } : {}),
    schema: { type: 'string' },
  }))
}

const RETRY_AFTER = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
}

/** The error responses of an operation: one per status, listing its codes. */
function errorResponses(op: ApiOperation): JsonObject {
  const codes = [
    ...new Set([
      ...(op.scope === null ? ['rate_limited', 'internal'] : COMMON_ERRORS),
      // Every body is bounded (src/server/routes/api.ts).
      ...(op.body === undefined ? [] : ['payload_too_large']),
      ...op.errors,
    ]),
  ]
  const byStatus = new Map<number, ErrorCode[]>()
  for (const code of codes as ErrorCode[]) {
    const status = ERROR_CODES[code].status
    byStatus.set(status, [...(byStatus.get(status) ?? []), code])
  }
  const responses: JsonObject = {}
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: `Error codes: ${list.map((code) => `\`${code}\``).join(', ')}.`,
      ...(status === 429 || status === 503 ? { headers: RETRY_AFTER } : {}),
      content: {
        'application/json': {
          schema: { $ref: '#/components/schemas/ErrorResponse' },
          // The codes as data too, for tools and for the test that every code is documented.
          'x-error-codes': list,
        },
      },
    }
  }
  return responses
}

function operationObject(op: ApiOperation): JsonObject {
  const parameters = [...pathParameters(op), ...(op.query ? queryParameters(op.query) : [])]
  const access =
    op.scope === null
      ? 'No API key needed.'
      : `Needs the \`${op.scope}\` scope${op.allTenants ? ' and a key for every tenant' : ''}.`
  return {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    description: [op.description, access].filter(Boolean).join(' '),
    ...(op.scope === null ? { security: [] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(op.body === spapiAnswerSchema
      ? {
          requestBody: {
            required: false,
            description: 'The SP-API request body, passed to Amazon as it is.',
            content: { 'application/json': { schema: {} } },
          },
        }
      : op.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: refTo(op.body, REQUEST_SCHEMAS) } },
            },
          }
        : {}),
    responses: {
      [String(op.response.status)]: {
        description: op.response.description,
        ...(op.response.noStore
          ? {
              headers: { 'Cache-Control': { description: 'Always `no-store`.', schema: { type: 'string' } } },
            }
          : {}),
        content: {
          'application/json': {
            schema:
              op.response.schema === openApiDocumentSchema
                ? { type: 'object' }
                : op.response.schema === spapiAnswerSchema
                  ? {}
                  : refTo(op.response.schema, RESPONSE_SCHEMAS),
          },
        },
      },
      ...errorResponses(op),
    },
  }
}

const TAG_DESCRIPTIONS: Readonly<Record<string, string>> = {
  Meta: 'The contract itself.',
  Connections: 'Authorized seller and vendor accounts.',
  Tokens: 'LWA access tokens for calling SP-API.',
  'Connect sessions': 'Links that send a user to connect or re-authorize a seller account.',
  'Login requests': 'Authorizations started on Amazon, handed to the app’s sign-in page.',
  'API keys': 'Keys for this API, as managed objects.',
  Events: 'The audit log and the webhook outbox, read-only.',
  Notifications: 'SP-API notifications forwarded from the app’s SQS queue.',
  'SP-API': 'Calls to the Selling Partner API, through sp-connect.',
}

/** The document without `servers`, built once. */
let cached: JsonObject | undefined

function documentBody(): JsonObject {
  if (cached) return cached
  const paths: Record<string, Record<string, JsonObject>> = {}
  for (const op of API_OPERATIONS) {
    const path = openApiPath(op.path)
    paths[path] = { ...paths[path], [op.method]: operationObject(op) }
  }
  const tags = [...new Set(API_OPERATIONS.map((op) => op.tag))].map((name) => ({
    name,
    description: TAG_DESCRIPTIONS[name] ?? name,
  }))
  cached = {
    openapi: '3.1.1',
    info: {
      title: 'sp-connect API',
      version: 'v1',
      description:
        'The API for the application’s backend: connections, tokens, connect links, login requests, API keys, events. Errors are `{"error": {"code", "message"}}` with a stable `code` (see `ErrorCode`).',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    tags,
    security: [{ apiKey: [] }],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'An sp-connect API key.' },
      },
      schemas: {
        ...componentSchemas(REQUEST_SCHEMAS, 'input'),
        ...componentSchemas(RESPONSE_SCHEMAS, 'output'),
      },
    },
  }
  return cached
}

/** The OpenAPI 3.1 document for a service reached at `serverUrl` (public origin plus any base path). */
export function openApiDocument(serverUrl: string): JsonObject {
  const { openapi, info, ...rest } = documentBody()
  return { openapi, info, servers: [{ url: serverUrl }], ...rest }
}
