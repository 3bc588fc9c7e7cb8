/**
 * The processing half of a token request: checks a `Response` from the token endpoint and returns
 * validated tokens, or throws an {@link LwaError}. No network; unit-tested with hand-built responses.
 *
 * Every check is strict, because whatever passes here is encrypted, stored and sent to SP-API:
 * - the body is read up to 64 KiB (LWA's answers are under 2 KiB); more is unexpected;
 * - a success must be `200`, `application/json`, a JSON object, with a printable-ASCII `access_token` of at
 *   most 2048 bytes, `token_type` `bearer` in any case, and a numeric `expires_in` of at least 1;
 * - a redirect is never a valid answer (the request was not followed to it, see `request.ts`).
 *
 * @see ../../../../shared/spapi-facts.md §4.3-4.4
 */
import { z } from 'zod'
import { concatBytes } from '../read-capped.ts'
import { codeForErrorResponse, LwaError, type LwaErrorCode, sanitizeDescription } from './errors.ts'
import { parseRetryAfter } from './retry.ts'
import { type GrantType, type LwaTokens, MAX_EXPIRES_IN_SECONDS } from './types.ts'

/** Largest body we read. LWA's answers are well under 2 KiB; a bigger one is not LWA talking. */
export const MAX_RESPONSE_BYTES = 64 * 1024
const MAX_TOKEN_BYTES = 2048
/** Printable ASCII without space: Amazon's tokens (`Atza|…`), and nothing that could break an HTTP header. */
const TOKEN_CHARS = /^[\x21-\x7e]+$/
const OAUTH_ERROR_VALUE = /^[A-Za-z0-9_.-]{1,64}$/
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
const ERROR_INDEX = /^[A-Za-z0-9+/=_.:-]{1,512}$/

const token = z.string().min(1).max(MAX_TOKEN_BYTES).regex(TOKEN_CHARS)

const successSchema = z.object({
  access_token: token,
  token_type: z.string().refine((value) => value.toLowerCase() === 'bearer'),
  // ≥ 1 rather than > 0: the value is floored to whole seconds below and must stay positive
  expires_in: z.number().min(1),
})

const refreshTokenSchema = z.object({ refresh_token: token })
const optionalRefreshTokenSchema = z.object({ refresh_token: token.optional() })

/**
 * Each field is kept only if it is well formed, so one odd field does not hide the others; `error` and
 * the ids are restricted to harmless characters because they are logged.
 */
const errorBodySchema = z.object({
  error: z.string().regex(OAUTH_ERROR_VALUE).optional().catch(undefined),
  error_description: z.string().optional().catch(undefined),
  error_index: z.string().regex(ERROR_INDEX).optional().catch(undefined),
  request_id: z.string().regex(REQUEST_ID).optional().catch(undefined),
})

interface ProcessOptions {
  /** Clock for `Retry-After` dates. The client passes `deps.now`; defaults to `Date.now`. */
  readonly now?: () => number
  /** Stops reading the body when it aborts (the client passes the attempt's deadline). */
  readonly signal?: AbortSignal | undefined
}

/**
 * Checks a token-endpoint response for `grantType` and returns its tokens.
 *
 * - `authorization_code`: `refresh_token` is required.
 * - `refresh_token`: `refresh_token` is optional (`null` when absent) but checked when present.
 * - `client_credentials`: any `refresh_token` is ignored (`null`).
 * - `expires_in` above {@link MAX_EXPIRES_IN_SECONDS} (3600) is clamped to it: Amazon's tokens live one hour,
 *   so a larger value is a fault or a hostile endpoint; trusting it would keep a dead or leaked token in use
 *   for that long, while rejecting it would turn a harmless change on Amazon's side into an outage. Missing,
 *   zero, negative or non-numeric values are still rejected.
 *
 * Throws only {@link LwaError}: OAuth error bodies map through `OAUTH_ERROR_CODES`, a 429 is
 * `lwa_throttled`, another 5xx `lwa_server_error`, everything malformed `lwa_unexpected_response`.
 */
export async function processTokenResponse(
  response: Response,
  grantType: GrantType,
  options: ProcessOptions = {},
): Promise<LwaTokens> {
  const requestId = responseRequestId(response.headers)
  const { status } = response
  if (response.type === 'opaqueredirect' || (status >= 300 && status <= 399)) {
    cancelBody(response)
    throw new LwaError('lwa_unexpected_response', {
      httpStatus: status,
      requestId,
      detail: `LWA answered the ${grantType} request with a redirect (${status}); token requests do not follow redirects`,
    })
  }
  if (status !== 200) throw await errorFromResponse(response, grantType, requestId, options)

  const unexpected = (reason: string) =>
    new LwaError('lwa_unexpected_response', {
      httpStatus: status,
      requestId,
      detail: `LWA's ${grantType} response ${reason}`,
    })

  if (!isJsonMediaType(response.headers.get('content-type'))) {
    cancelBody(response)
    throw unexpected('is not JSON (Content-Type)')
  }
  const body = parseJsonObject(await readBody(response, requestId, options.signal))
  if (body === undefined) throw unexpected('is not a JSON object')

  const parsed = successSchema.safeParse(body)
  if (!parsed.success) throw unexpected(`failed validation: ${describeIssues(parsed.error)}`)

  let refreshToken: string | null = null
  if (grantType === 'authorization_code') {
    const result = refreshTokenSchema.safeParse(body)
    if (!result.success) throw unexpected(`failed validation: ${describeIssues(result.error)}`)
    refreshToken = result.data.refresh_token
  } else if (grantType === 'refresh_token') {
    const result = optionalRefreshTokenSchema.safeParse(body)
    if (!result.success) throw unexpected(`failed validation: ${describeIssues(result.error)}`)
    refreshToken = result.data.refresh_token ?? null
  }

  return Object.freeze({
    accessToken: parsed.data.access_token,
    tokenType: 'bearer',
    expiresIn: Math.min(Math.floor(parsed.data.expires_in), MAX_EXPIRES_IN_SECONDS),
    refreshToken,
  })
}

/** LWA's request id from the `x-amzn-RequestId` header, if it is well formed (it gets logged). */
export function responseRequestId(headers: Headers): string | undefined {
  const value = headers.get('x-amzn-requestid')
  return value !== null && REQUEST_ID.test(value) ? value : undefined
}

async function errorFromResponse(
  response: Response,
  grantType: GrantType,
  headerRequestId: string | undefined,
  options: ProcessOptions,
): Promise<LwaError> {
  const { status } = response
  let text: string | undefined
  try {
    text = await readBody(response, headerRequestId, options.signal)
  } catch {
    // Oversized or broken: the status alone still says enough to classify the failure
    text = undefined
  }
  const json = text === undefined ? undefined : parseJsonObject(text)
  const body = json === undefined ? undefined : errorBodySchema.parse(json)
  const oauthError = body?.error
  const code: LwaErrorCode = codeForErrorResponse(status, oauthError)
  const description = body?.error_description === undefined ? '' : sanitizeDescription(body.error_description)
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), (options.now ?? Date.now)())
  return new LwaError(code, {
    httpStatus: status,
    oauthError,
    requestId: body?.request_id ?? headerRequestId,
    errorIndex: body?.error_index,
    retryAfterMs,
    detail:
      `LWA answered the ${grantType} request with ${status}` +
      (oauthError === undefined ? ' and no OAuth error body' : ` ${oauthError}`) +
      (description === '' ? '' : `: ${description}`),
  })
}

/** Reads the body as UTF-8 text, refusing more than {@link MAX_RESPONSE_BYTES}. */
async function readBody(
  response: Response,
  requestId: string | undefined,
  signal: AbortSignal | undefined,
): Promise<string> {
  const fail = (detail: string, code: LwaErrorCode = 'lwa_unexpected_response') =>
    new LwaError(code, { httpStatus: response.status, requestId, detail })
  const declared = response.headers.get('content-length')
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > MAX_RESPONSE_BYTES) {
    cancelBody(response)
    throw fail(`LWA's response body is larger than ${MAX_RESPONSE_BYTES} bytes`)
  }
  if (response.bodyUsed) throw fail("LWA's response body was already read")
  if (response.body === null) return ''

  const reader = response.body.getReader()
  // Cancelling settles a pending read, so a body that stalls cannot outlive the deadline
  const onAbort = () => reader.cancel().catch(() => {})
  signal?.addEventListener('abort', onAbort, { once: true })
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      if (signal?.aborted) throw new Error('aborted')
      const { done, value } = await reader.read()
      if (signal?.aborted) throw new Error('aborted')
      if (done) break
      size += value.byteLength
      if (size > MAX_RESPONSE_BYTES) {
        reader.cancel().catch(() => {})
        throw fail(`LWA's response body is larger than ${MAX_RESPONSE_BYTES} bytes`)
      }
      chunks.push(value)
    }
  } catch (error) {
    if (error instanceof LwaError) throw error
    // The connection broke (or the deadline hit) while the body was arriving
    throw fail("reading LWA's response body failed", 'lwa_unreachable')
  } finally {
    signal?.removeEventListener('abort', onAbort)
    reader.releaseLock()
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(concatBytes(chunks, size))
  } catch {
    throw fail("LWA's response body is not valid UTF-8")
  }
}

/** A JSON object (not an array, not null), or undefined. */
function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}

/** `application/json` or `…+json`, parameters ignored (LWA sends `application/json;charset UTF-8`). */
function isJsonMediaType(contentType: string | null): boolean {
  if (contentType === null) return false
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase()
  return mediaType === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(mediaType)
}

/** Field names and issue kinds only: zod's messages are safe, but field values must never get here. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.map(String).join('.') || '(body)'} ${issue.code}`)
    .join(', ')
}

/** Releases a response body that will not be read. Never throws. */
export function cancelBody(response: Response): void {
  try {
    if (response.body !== null && !response.body.locked) response.body.cancel().catch(() => {})
  } catch {
    // a body that cannot be cancelled is left to the garbage collector
  }
}
