/** Small response helpers shared by the simulated pages: redirects, HTML pages, forms, refusals. */
import type { Context } from 'hono'
import type { Refusal } from './authorization.ts'
import { pageHeaders } from './page-headers.ts'
import { errorPage } from './pages.ts'
import { baseUrlOf } from './routes.ts'

/** A 302 to `location` that leaks no referrer and is never cached. */
export function redirectTo(c: Context, location: string): Response {
  return c.body(null, 302, {
    Location: location,
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  })
}

/** `uri` with `params` appended to its query, keeping what the registered URI already had. */
export function withQuery(uri: string, params: ReadonlyArray<readonly [string, string]>): string {
  const url = new URL(uri)
  for (const [name, value] of params) url.searchParams.append(name, value)
  return url.toString()
}

/** Sends an HTML page with the page headers. */
export async function sendPage(
  c: Context,
  page: string | Promise<string>,
  status: 200 | 400 | 403 | 404,
  formTargets: readonly string[] | null,
): Promise<Response> {
  return c.html(await page, status, pageHeaders(formTargets))
}

type FormFields = ReadonlyMap<string, string>

/** String fields of a urlencoded/multipart form (files and repeated names beyond the first ignored). */
export async function readForm(c: Context): Promise<FormFields> {
  const body = await c.req.parseBody()
  const fields = new Map<string, string>()
  for (const [name, value] of Object.entries(body)) {
    const first = Array.isArray(value) ? value[0] : value
    if (typeof first === 'string') fields.set(name, first)
  }
  return fields
}

export function refusalPage(
  c: Context,
  base: string,
  host: string,
  appId: string | undefined,
  refusal: Refusal,
  status: 400 | 403 = 400,
): Promise<Response> {
  const page = errorPage({ base, host, appId, message: refusal.message, errorCode: refusal.errorCode })
  return sendPage(c, page, status, null)
}

/** 404 for a host the simulator does not serve; `routeSegments` locates the simulator base in the URL. */
export function unknownHostPage(c: Context, routeSegments: number): Promise<Response> {
  const base = baseUrlOf(c.req.url, routeSegments)
  const page = errorPage({
    base,
    host: undefined,
    appId: undefined,
    message: 'Page not found.',
    errorCode: undefined,
  })
  return sendPage(c, page, 404, null)
}
