/**
 * Asks Amazon for a new LWA client secret: `rotateApplicationClientSecret`, `POST
 * /applications/2023-11-30/clientSecret` on the NA SP-API endpoint, with a grantless token for
 * `sellingpartnerapi::client_credential:rotation`. Amazon answers 204 with no body; the new secret arrives
 * later, only as an `APPLICATION_OAUTH_CLIENT_NEW_SECRET` notification on the app's SQS queue
 * (see `ClientSecrets.handleNotification` and docs/secret-rotation.md).
 *
 * Never retried: a rotation is not idempotent (a second one would expire the secret the first one just
 * issued), and Amazon allows about one a minute.
 *
 * @see ../../../../shared/spapi-facts.md §5, §7.1
 */
import { SpConnectError } from '../../domain/errors.ts'
import { SPAPI_HOSTS } from '../../domain/regions.ts'
import type { Deps } from '../deps.ts'
import type { LwaClient } from '../lwa/client.ts'
import { sanitizeDescription } from '../lwa/errors.ts'
import { DEFAULT_USER_AGENT } from '../lwa/request.ts'

const ROTATION_SCOPE = 'sellingpartnerapi::client_credential:rotation'
const ROTATION_PATH = '/applications/2023-11-30/clientSecret'
const DEFAULT_TIMEOUT_MS = 30_000
const MAX_ERROR_BODY_BYTES = 16 * 1024
/** Amazon's rate for the operation is 0.0167 requests per second. */
const THROTTLED_RETRY_AFTER_S = 60

interface RotationOptions {
  /** Gets the grantless token (through the app's credential source, so a rotation in progress is fine). */
  readonly lwa: Pick<LwaClient, 'clientCredentials'>
  /** Base URL template of SP-API hosts, `https://{host}` in production (config.amazon.spapiUrlTemplate). */
  readonly spapiUrlTemplate: string
  readonly userAgent?: string
  readonly timeoutMs?: number
}

interface RotationResult {
  /** SP-API's `x-amzn-RequestId`, for Amazon support. */
  readonly requestId: string | null
}

/** The rotation endpoint under the configured template (the NA production host: the app is global). */
function rotationUrl(spapiUrlTemplate: string): string {
  const base = spapiUrlTemplate.replace('{host}', SPAPI_HOSTS.na.production).replace(/\/+$/, '')
  return `${base}${ROTATION_PATH}`
}

/**
 * Requests a rotation. Resolves when Amazon accepted it (204). Throws the LWA error if the grantless token
 * cannot be had, `secret_rotation_not_enrolled` (400: no SQS destination for the new-secret notification),
 * `secret_rotation_throttled` (429), `secret_rotation_failed` (403, other statuses), or `spapi_unreachable`.
 */
export async function rotateClientSecret(
  options: RotationOptions,
  deps: Pick<Deps, 'fetch' | 'logger'>,
): Promise<RotationResult> {
  const token = await options.lwa.clientCredentials(ROTATION_SCOPE)
  let response: Response
  try {
    response = await deps.fetch(rotationUrl(options.spapiUrlTemplate), {
      method: 'POST',
      headers: {
        'x-amz-access-token': token.accessToken,
        'User-Agent': options.userAgent ?? DEFAULT_USER_AGENT,
        Accept: 'application/json',
      },
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    })
  } catch (error) {
    throw new SpConnectError('spapi_unreachable', {
      cause: error,
      detail:
        'the rotation request failed in transit; Amazon may or may not have rotated: wait for the notification before trying again',
    })
  }
  const requestId = response.headers.get('x-amzn-RequestId')
  if (response.status >= 200 && response.status < 300) {
    await response.body?.cancel().catch(() => {})
    deps.logger.info({ requestId, status: response.status }, 'client secret rotation requested')
    return { requestId }
  }
  const reason = await errorSummary(response)
  const detail = `SP-API answered ${response.status}${reason === '' ? '' : ` ${reason}`} (request id ${requestId ?? 'none'})`
  deps.logger.warn({ requestId, status: response.status }, 'client secret rotation refused')
  if (response.status === 400) throw new SpConnectError('secret_rotation_not_enrolled', { detail })
  if (response.status === 429) {
    throw new SpConnectError('secret_rotation_throttled', {
      detail,
      retryAfterSeconds: THROTTLED_RETRY_AFTER_S,
    })
  }
  throw new SpConnectError('secret_rotation_failed', { detail })
}

/** `code: message` of SP-API's first error, sanitized and short; empty when the body says nothing usable. */
async function errorSummary(response: Response): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0')
  if (declared > MAX_ERROR_BODY_BYTES) {
    await response.body?.cancel().catch(() => {})
    return ''
  }
  let text: string
  try {
    text = await response.text()
  } catch {
    return ''
  }
  if (text.length > MAX_ERROR_BODY_BYTES) return ''
  try {
    const body = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] }
    const first = Array.isArray(body.errors) ? body.errors[0] : undefined
    const code = typeof first?.code === 'string' ? first.code : ''
    const message = typeof first?.message === 'string' ? first.message : ''
    return sanitizeDescription([code, message].filter((s) => s !== '').join(': '))
  } catch {
    return ''
  }
}
