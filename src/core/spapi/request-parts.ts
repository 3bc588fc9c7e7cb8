/**
 * What of a caller's request may reach SP-API, and what of SP-API's answer goes back. Values here come from
 * API callers (the HTTP passthrough hands over whatever it received), so everything is checked against an
 * allow-list and refused or dropped otherwise.
 */
import { SpConnectError } from '../../domain/errors.ts'

/** Longest path (without query) and query string accepted. */
const MAX_PATH_LENGTH = 2048
const MAX_QUERY_LENGTH = 8192

/**
 * Characters a path may hold as sent (RFC 3986 pchar and `/`). Anything else (spaces, non-ASCII, `{`, `"`,
 * `\`) must come percent-encoded, so the URL we build is exactly the path we checked: WHATWG URL parsing
 * would otherwise re-encode or normalise it behind our back.
 */
const PATH_CHARS = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/
const QUERY_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/
const PERCENT = /%(?![0-9A-Fa-f]{2})/

/**
 * Whether a decoded path segment could be read as something else than a name by some server on the way:
 * a dot segment, or anything starting with `..` (`..;`, `..%00` that Java servers and proxies resolve as `..`).
 * SP-API paths need neither. (A `;` path parameter is refused where it is written plainly: only a raw `;`
 * starts one, and an encoded `%3B` may be part of a SKU.)
 */
function isUnsafePathSegment(decoded: string): boolean {
  return decoded === '.' || decoded.startsWith('..')
}

/**
 * Checks an SP-API path (no query) and returns it unchanged. Refused: relative or scheme-relative paths,
 * absolute URLs, dot segments and segments starting with `..` (written plainly or percent-encoded, see
 * {@link isUnsafePathSegment}), a plain `;` (a path parameter), encoded slashes or backslashes that would form such a
 * segment once decoded (`%2F..%2F`), encoded NUL/control characters, malformed escapes, over-long paths. An
 * encoded slash inside an ordinary segment is kept: SKUs may contain `/` and Amazon wants them encoded.
 */
export function checkSpApiPath(path: string): string {
  const refuse = (why: string) => new SpConnectError('invalid_request', { detail: `SP-API path ${why}` })
  if (path.length > MAX_PATH_LENGTH) throw refuse('is too long')
  if (!PATH_CHARS.test(path) || path.startsWith('//')) throw refuse('must be an absolute path')
  if (PERCENT.test(path)) throw refuse('has a malformed escape')
  if (path.includes(';')) throw refuse('has path parameters')
  for (const raw of path.slice(1).split('/')) {
    // Without an escape a segment is its own decoding; PATH_CHARS already kept out controls and backslashes.
    if (!raw.includes('%')) {
      if (isUnsafePathSegment(raw)) throw refuse('has dot segments or path parameters')
      continue
    }
    let decoded: string
    try {
      decoded = decodeURIComponent(raw)
    } catch {
      throw refuse('has a malformed escape')
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
    if (/[\u0000-\u001f\u007f\\]/.test(decoded)) throw refuse('has forbidden characters')
    if (decoded.split('/').some(isUnsafePathSegment)) throw refuse('has dot segments or path parameters')
  }
  return path
}

/** Checks a raw query string (without `?`). */
function checkQueryString(search: string): string {
  if (search.length > MAX_QUERY_LENGTH)
    throw new SpConnectError('invalid_request', { detail: 'query too long' })
  if (!QUERY_CHARS.test(search) || PERCENT.test(search))
    throw new SpConnectError('invalid_request', { detail: 'query has characters that must be encoded' })
  return search
}

/** A query as parameters; arrays repeat the name. */
export type SpApiQuery =
  | URLSearchParams
  | Readonly<Record<string, string | number | boolean | readonly (string | number | boolean)[] | undefined>>

/**
 * Splits `path` (which may carry its own `?query`) and merges `query` into it. Returns the checked path and
 * the query string without `?` (empty when none).
 */
export function splitPathAndQuery(path: string, query?: SpApiQuery): { path: string; search: string } {
  if (typeof path !== 'string') throw new SpConnectError('invalid_request', { detail: 'SP-API path missing' })
  if (/^[a-z][a-z0-9+.-]*:/i.test(path))
    throw new SpConnectError('invalid_request', { detail: 'SP-API path must not be a URL' })
  const mark = path.indexOf('?')
  const bare = checkSpApiPath(mark === -1 ? path : path.slice(0, mark))
  let search = mark === -1 ? '' : checkQueryString(path.slice(mark + 1))
  if (query !== undefined) {
    const params = new URLSearchParams()
    const entries = query instanceof URLSearchParams ? [...query.entries()] : Object.entries(query)
    for (const [name, value] of entries) {
      if (value === undefined) continue
      for (const one of Array.isArray(value) ? value : [value]) params.append(name, String(one))
    }
    // URLSearchParams encodes spaces as '+', which SP-API reads as a plus: use %20.
    const extra = params.toString().replace(/\+/g, '%20')
    if (extra !== '') search = checkQueryString(search === '' ? extra : `${search}&${extra}`)
  }
  return { path: bare, search }
}

/**
 * Request headers a caller may set, and nothing else: the body's type and language, and what answer it
 * accepts. Everything else is dropped, never forwarded: `Authorization`, `Cookie`, `Host`,
 * `x-amz-access-token` (sp-connect sets the credential), `x-amz-*`/`x-amzn-*` (Amazon's own signing and
 * tracing headers; a caller has no business choosing them), `Forwarded`/`X-Forwarded-*`, proxy and hop-by-hop
 * headers (`Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`),
 * `Content-Length` and `Content-Encoding` (fetch frames the body itself), and `User-Agent` (sp-connect's own,
 * conforming one is sent).
 */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'content-language', 'accept', 'accept-language'] as const

const MAX_HEADER_VALUE = 1024
// Visible ASCII and spaces only: CR/LF and other control characters cannot smuggle a header line through.
const HEADER_VALUE = /^[\x20-\x7e]*$/

/** The allow-listed headers of `given`, checked; an unsafe value is refused rather than silently dropped. */
export function forwardableHeaders(given: HeadersInit | undefined): Headers {
  const out = new Headers()
  if (given === undefined) return out
  const source = given instanceof Headers ? given : new Headers(given)
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = source.get(name)
    if (value === null) continue
    if (value.length > MAX_HEADER_VALUE || !HEADER_VALUE.test(value))
      throw new SpConnectError('invalid_request', { detail: `bad ${name} header` })
    out.set(name, value)
  }
  return out
}

/**
 * Response headers handed back to callers: the body's type and language, Amazon's request id (quote it to
 * Amazon support), the usage plan Amazon applied, the error type, and Retry-After. Set-Cookie, hop-by-hop and
 * framing headers (fetch may have decompressed the body, so Content-Length/Content-Encoding no longer hold)
 * stay behind.
 */
const RETURNED_RESPONSE_HEADERS = [
  'content-type',
  'content-language',
  'x-amzn-requestid',
  'x-amzn-ratelimit-limit',
  'x-amzn-errortype',
  'retry-after',
] as const

export function returnedHeaders(from: { get(name: string): string | null }): Headers {
  const out = new Headers()
  for (const name of RETURNED_RESPONSE_HEADERS) {
    const value = from.get(name)
    if (value !== null) out.set(name, value)
  }
  return out
}
