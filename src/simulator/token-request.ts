/**
 * Reading an LWA token request: the body (form or JSON, as the official SDKs send them, spapi-facts.md
 * §4.1) and the client credentials (body fields or HTTP Basic).
 */

export type TokenParams = ReadonlyMap<string, string>

/**
 * Body fields by name. Form bodies go through URLSearchParams, which leaves an unencoded `|` (the JS SDK
 * concatenates tokens without encoding) intact. JSON bodies keep string fields only. Any other content
 * type yields no fields, so the caller answers unsupported_grant_type, which is what Amazon reports for a
 * wrongly encoded body (§8); the exact behaviour for other content types is undocumented.
 */
export function parseTokenBody(contentType: string | undefined, body: string): TokenParams {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  const fields = new Map<string, string>()
  if (type === 'application/x-www-form-urlencoded') {
    for (const [name, value] of new URLSearchParams(body)) if (!fields.has(name)) fields.set(name, value)
  } else if (type === 'application/json' || type.endsWith('+json')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch {
      return fields
    }
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      for (const [name, value] of Object.entries(parsed))
        if (typeof value === 'string') fields.set(name, value)
    }
  }
  return fields
}

interface ClientCredentials {
  readonly clientId: string | undefined
  readonly clientSecret: string | undefined
  /** The credentials came in an Authorization: Basic header. */
  readonly basic: boolean
  /** Basic header and body fields disagree, or the header is malformed. */
  readonly conflict: boolean
}

function decodeFormComponent(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '))
  } catch {
    return value
  }
}

/** Client id and secret from the Basic header (RFC 6749 §2.3.1 form-encodes them first) or the body. */
export function clientCredentials(params: TokenParams, authorization: string | undefined): ClientCredentials {
  const bodyId = params.get('client_id')
  const bodySecret = params.get('client_secret')
  const match = authorization?.match(/^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i)
  if (!authorization || !/^Basic\s/i.test(authorization)) {
    return { clientId: bodyId, clientSecret: bodySecret, basic: false, conflict: false }
  }
  const decoded = match?.[1] ? Buffer.from(match[1], 'base64').toString('utf8') : ''
  const colon = decoded.indexOf(':')
  if (colon < 0) return { clientId: undefined, clientSecret: undefined, basic: true, conflict: true }
  const clientId = decodeFormComponent(decoded.slice(0, colon))
  const clientSecret = decodeFormComponent(decoded.slice(colon + 1))
  const conflict =
    (bodyId !== undefined && bodyId !== clientId) || (bodySecret !== undefined && bodySecret !== clientSecret)
  return { clientId, clientSecret, basic: true, conflict }
}
