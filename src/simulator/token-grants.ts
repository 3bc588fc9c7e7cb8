/**
 * The three LWA grants SP-API uses (spapi-facts.md §4.2): authorization_code, refresh_token and
 * client_credentials. Works on parsed parameters and returns a result; token-endpoint.ts turns it into HTTP.
 */
import type { SimulatorContext } from './context.ts'
import { invalidRequestDescription, LWA_ERROR_CODE, LWA_ERRORS, type LwaErrorKey } from './lwa-errors.ts'
import { ACCESS_TOKEN_TTL_S, GRANT_TTL_MS } from './state.ts'
import { clientCredentials, type TokenParams } from './token-request.ts'
import { signAccessToken, signRefreshToken, verifyRefreshToken } from './tokens.ts'
import { GRANT_TYPES, type GrantType, type SimulatedApp } from './types.ts'

interface TokenSuccess {
  readonly ok: true
  readonly body: {
    access_token: string
    token_type: 'bearer'
    expires_in: number
    refresh_token?: string
  }
}

interface TokenFailure {
  readonly ok: false
  readonly status: number
  readonly error: string
  readonly description: string
  /** Answer with `WWW-Authenticate: Basic` (failed Basic client authentication, RFC 6749 §5.2). */
  readonly challenge: boolean
}

type TokenResult = TokenSuccess | TokenFailure

/** Scopes LWA accepts for client_credentials in SP-API (spapi-facts.md §5). */
export const GRANTLESS_SCOPES: readonly string[] = [
  'sellingpartnerapi::notifications',
  'sellingpartnerapi::client_credential:rotation',
  'sellingpartnerapi::migration',
]

function fail(key: LwaErrorKey, challenge = false): TokenFailure {
  const entry = LWA_ERRORS[key]
  return {
    ok: false,
    status: entry.status,
    error: LWA_ERROR_CODE[key],
    description: entry.description,
    challenge,
  }
}

function invalidRequest(parameter: string): TokenFailure {
  return {
    ok: false,
    status: 400,
    error: 'invalid_request',
    description: invalidRequestDescription(parameter),
    challenge: false,
  }
}

export function grantTypeOf(params: TokenParams): GrantType | 'other' {
  const value = params.get('grant_type')
  return (GRANT_TYPES as readonly string[]).includes(value ?? '') ? (value as GrantType) : 'other'
}

function nonEmpty(params: TokenParams, name: string): string | undefined {
  const value = params.get(name)
  return value === undefined || value === '' ? undefined : value
}

interface GrantInput {
  readonly ctx: SimulatorContext
  readonly app: SimulatedApp
  readonly params: TokenParams
  readonly now: number
}

function success(accessToken: string, refreshToken?: string): TokenSuccess {
  const body: TokenSuccess['body'] = {
    access_token: accessToken,
    token_type: 'bearer',
    expires_in: ACCESS_TOKEN_TTL_S,
  }
  if (refreshToken !== undefined) body.refresh_token = refreshToken
  return { ok: true, body }
}

interface GrantClaims {
  readonly g: string
  readonly n: number
  readonly sp: string
  readonly c: string
  readonly r: 'na' | 'eu' | 'fe'
}

function accessForGrant({ ctx, now }: GrantInput, grant: GrantClaims): string {
  return signAccessToken(ctx.signingSecret, {
    g: grant.g,
    gn: grant.n,
    sp: grant.sp,
    r: grant.r,
    c: grant.c,
    n: ctx.state.nextSerial(),
    iat: now,
    exp: now + ACCESS_TOKEN_TTL_S * 1000,
  })
}

function authorizationCodeGrant(input: GrantInput): TokenResult {
  const { ctx, app, params, now } = input
  const code = nonEmpty(params, 'code')
  if (code === undefined) return invalidRequest('code')
  // Expired, used, unknown or issued to another app: LWA gives one answer for all (§8).
  const issued = ctx.state.peekCode(code, now)
  if (!issued || issued.clientId !== app.clientId) return fail('invalid_grant_code')
  const redirectUri = nonEmpty(params, 'redirect_uri')
  if (redirectUri !== undefined && redirectUri !== issued.redirectUri)
    return fail('invalid_grant_redirect_uri')
  const ref = {
    sellingPartnerId: issued.sellingPartnerId,
    clientId: issued.clientId,
    serial: issued.grantSerial,
  }
  if (ctx.state.isRevoked(ref)) return fail('invalid_grant_code')
  ctx.state.consumeCode(code)
  const grant: GrantClaims = {
    g: issued.grantId,
    n: issued.grantSerial,
    sp: issued.sellingPartnerId,
    c: issued.clientId,
    r: issued.region,
  }
  const refreshToken = signRefreshToken(ctx.signingSecret, { ...grant, iat: issued.issuedAt })
  return success(accessForGrant(input, grant), refreshToken)
}

function refreshTokenGrant(input: GrantInput): TokenResult {
  const { ctx, app, params, now } = input
  if (params.has('scope')) return invalidRequest('scope')
  const refreshToken = nonEmpty(params, 'refresh_token')
  if (refreshToken === undefined) return invalidRequest('refresh_token')
  const claims = verifyRefreshToken(ctx.signingSecret, refreshToken)
  // Mistyped, another app's, revoked, or older than the 365-day authorization life (§7.2): one answer.
  if (
    !claims ||
    claims.c !== app.clientId ||
    ctx.state.isRevoked({ sellingPartnerId: claims.sp, clientId: claims.c, serial: claims.n }) ||
    now - claims.iat > GRANT_TTL_MS
  ) {
    return fail('invalid_grant_refresh_token')
  }
  // Refresh tokens do not rotate: the response echoes the submitted token (§4.3).
  return success(accessForGrant(input, claims), refreshToken)
}

function clientCredentialsGrant({ ctx, app, params, now }: GrantInput): TokenResult {
  if (params.has('refresh_token')) return invalidRequest('refresh_token')
  const scope = nonEmpty(params, 'scope')
  if (scope === undefined) return invalidRequest('scope')
  const scopes = scope.split(' ').filter((s) => s !== '')
  if (scopes.length === 0 || scopes.some((s) => !GRANTLESS_SCOPES.includes(s))) return fail('invalid_scope')
  const accessToken = signAccessToken(ctx.signingSecret, {
    s: scopes.join(' '),
    c: app.clientId,
    n: ctx.state.nextSerial(),
    iat: now,
    exp: now + ACCESS_TOKEN_TTL_S * 1000,
  })
  return success(accessToken)
}

const GRANT_HANDLERS: Readonly<Record<GrantType, (input: GrantInput) => TokenResult>> = {
  authorization_code: authorizationCodeGrant,
  refresh_token: refreshTokenGrant,
  client_credentials: clientCredentialsGrant,
}

/**
 * Order of checks (Amazon's is undocumented): grant type, client authentication, then the grant's own
 * parameters and validity.
 */
export function processTokenRequest(
  ctx: SimulatorContext,
  params: TokenParams,
  authorization: string | undefined,
): TokenResult {
  const grantType = grantTypeOf(params)
  if (grantType === 'other') return fail('unsupported_grant_type')
  const creds = clientCredentials(params, authorization)
  if (creds.conflict || !creds.clientId || !creds.clientSecret) return fail('invalid_client', creds.basic)
  const now = ctx.now()
  const app = ctx.registry.authenticate(creds.clientId, creds.clientSecret, now)
  const secret = ctx.registry.findSecret(creds.clientId, creds.clientSecret)
  if (!app) {
    // A secret LWA knew but that has expired (after a rotation) is counted, to show who still uses it
    if (secret !== undefined) ctx.state.usageOf(secret.secret).refusedAfterExpiry += 1
    return fail('invalid_client', creds.basic)
  }
  if (secret !== undefined) {
    const usage = ctx.state.usageOf(secret.secret)
    usage.authenticated += 1
    usage.lastAuthenticatedAt = now
  }
  return GRANT_HANDLERS[grantType]({ ctx, app, params, now })
}
