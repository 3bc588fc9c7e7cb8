/**
 * The SP-API doors of `/v1`: the passthrough and Restricted Data Tokens.
 *
 * The route (src/server/routes/spapi-api.ts) validates with these; the OpenAPI document and the client's types
 * come from them too.
 */
import { z } from 'zod'
import { checkSpApiPath } from '../core/spapi/request-parts.ts'
import {
  DATA_ELEMENTS,
  MAX_RESTRICTED_RESOURCES,
  RESTRICTED_METHODS,
} from '../core/spapi/restricted-data-tokens.ts'

/**
 * The same checks as a passthrough path (checkSpApiPath: no dot segments, `..;` or `;`, plain or encoded, no
 * encoded controls), with `{placeholder}` segments ("any id") read as names: they reach the Tokens API as the
 * caller wrote them.
 */
function isSafeResourcePath(path: string): boolean {
  try {
    checkSpApiPath(path.replace(/\{\w+\}/g, 'x'))
    return true
  } catch {
    return false
  }
}

/** One resource of an RDT request (Tokens API 2021-03-01 `RestrictedResource`). */
const restrictedResourceSchema = z
  .object({
    method: z.enum(RESTRICTED_METHODS),
    path: z
      .string()
      .min(2)
      .max(2048)
      .regex(/^\/[A-Za-z0-9\-._~!$&'()*+,=:@%/{}]*$/)
      .refine(isSafeResourcePath, 'no dot segments, segments starting with .., or ;'),
    dataElements: z.array(z.enum(DATA_ELEMENTS)).max(DATA_ELEMENTS.length).optional(),
  })
  .strict()

/** `POST /v1/connections/{id}/restricted-data-tokens` body. */
export const restrictedDataTokenRequestSchema = z
  .object({
    restrictedResources: z.array(restrictedResourceSchema).min(1).max(MAX_RESTRICTED_RESOURCES),
    targetApplication: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)
      .optional(),
  })
  .strict()

export const restrictedDataTokenResponseSchema = z.object({
  restricted_data_token: z.string(),
  /** Seconds it stays valid. */
  expires_in: z.number().int(),
})

export type RestrictedDataTokenRequest = z.input<typeof restrictedDataTokenRequestSchema>
export type RestrictedDataTokenResponse = z.output<typeof restrictedDataTokenResponseSchema>
