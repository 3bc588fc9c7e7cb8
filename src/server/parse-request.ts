/** Request input checked with a zod schema from src/api-schemas/, failing as `invalid_request`. */
import type { z } from 'zod'
import { SpConnectError } from '../domain/errors.ts'

/**
 * `value` parsed by `schema`, or a 400 `invalid_request` whose detail names the invalid fields (never their
 * values: they may be secrets or personal data).
 */
export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value)
  if (!result.success) {
    const fields = result.error.issues.map((issue) => issue.path.join('.') || 'body').join(', ')
    throw new SpConnectError('invalid_request', { detail: `invalid: ${fields}` })
  }
  return result.data
}
