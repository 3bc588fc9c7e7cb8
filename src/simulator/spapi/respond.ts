/** SP-API's response conventions (spapi-facts.md §6.2): JSON bodies, request id, rate-limit header. */
import type { Context } from 'hono'
import { newRequestId } from '../ids.ts'

export type SpapiStatus = 200 | 201 | 204 | 400 | 403 | 404 | 409 | 429

interface SpapiError {
  readonly code: string
  readonly message: string
  readonly details?: string
}

/**
 * A JSON answer (none for 204). `x-amzn-RateLimit-Limit` is best effort on Amazon's side and only on 2xx, 400
 * and 404 answers, so it is sent with those when the operation's rate is known.
 */
export function spapiResponse(c: Context, status: SpapiStatus, body: object | null, rate?: number): Response {
  const headers: Record<string, string> = { 'x-amzn-RequestId': newRequestId() }
  if (rate !== undefined && (status < 300 || status === 400 || status === 404)) {
    headers['x-amzn-RateLimit-Limit'] = String(rate)
  }
  if (status === 403) headers['x-amzn-ErrorType'] = 'AccessDeniedException'
  if (status === 204 || body === null) return c.body(null, status === 204 ? 204 : status, headers)
  headers['Content-Type'] = 'application/json'
  return c.body(JSON.stringify(body), status, headers)
}

export function spapiErrors(c: Context, status: SpapiStatus, errors: SpapiError[], rate?: number): Response {
  return spapiResponse(c, status, { errors }, rate)
}

export function invalidInput(c: Context, message: string, rate: number, details = ''): Response {
  return spapiErrors(c, 400, [{ code: 'InvalidInput', message, details }], rate)
}

export function notFound(c: Context, rate?: number): Response {
  return spapiErrors(c, 404, [{ code: 'NotFound', message: 'Resource not found.' }], rate)
}

export const QUOTA_EXCEEDED: SpapiError = {
  code: 'QuotaExceeded',
  message: 'You exceeded your quota for the requested resource.',
  details: '',
}
