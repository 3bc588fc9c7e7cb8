/**
 * SP-API's pagination conventions, for following every page of a list operation (`sp-connect call --all`).
 * Amazon's APIs disagree on where the token comes back and under which query name it goes out:
 *
 * - Orders v0, Finances v0 and other v0 APIs: `payload.NextToken` back, `NextToken` out (other parameters kept).
 * - Reports, Feeds and other 2020-2021 APIs: top-level `nextToken` back, `nextToken` out, and then it must be
 *   the only parameter besides required ids (the Reports model: "nextToken … other parameters are ignored";
 *   sending them may be refused), so the rest are dropped.
 * - Catalog Items 2022-04-01, Listings Items 2021-08-01 and Product Type Definitions: `pagination.nextToken`
 *   back, `pageToken` out (other parameters kept).
 * - Other APIs with `pagination.nextToken` (FBA Inventory, Shipping, …): `nextToken` out (other parameters kept).
 */

const PAGE_TOKEN_APIS = /^\/(catalog\/2022-04-01|listings\/2021-08-01|definitions\/2020-09-01)\//

interface NextPage {
  /** The query of the next request: the old one with the token set (and, for some APIs, nothing else). */
  readonly query: URLSearchParams
}

/** The next page's query after a response body, or undefined when it was the last page (or not JSON). */
export function nextPage(path: string, query: URLSearchParams, body: string): NextPage | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const root = parsed as Record<string, unknown>
  const payload = root['payload'] as Record<string, unknown> | undefined
  const pagination = root['pagination'] as Record<string, unknown> | undefined
  const token = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined)

  const v0 = token(payload?.['NextToken'])
  if (v0 !== undefined) return { query: withParam(query, 'NextToken', v0) }
  const paged = token(pagination?.['nextToken'])
  if (paged !== undefined)
    return { query: withParam(query, PAGE_TOKEN_APIS.test(path) ? 'pageToken' : 'nextToken', paged) }
  const top = token(root['nextToken']) ?? token(payload?.['nextToken'])
  if (top !== undefined) return { query: new URLSearchParams({ nextToken: top }) }
  return undefined
}

function withParam(query: URLSearchParams, name: string, value: string): URLSearchParams {
  const next = new URLSearchParams(query)
  next.set(name, value)
  return next
}
