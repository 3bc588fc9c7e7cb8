/** API keys as managed objects. */
import { z } from 'zod'
import { optionalTimestampSchema, timestampSchema } from './common.ts'

/** `POST /v1/api-keys` body. A key may only create keys within its own scopes and tenants. */
export const createApiKeyBodySchema = z
  .object({
    name: z.string().min(1).max(100),
    scopes: z
      .array(z.string().max(32))
      .min(1)
      .max(8)
      .meta({ description: 'Any of `read`, `tokens`, `manage`.' }),
    tenants: z
      .array(z.string().max(256))
      .max(100)
      .nullable()
      .optional()
      .meta({ description: 'Omitted or null: every tenant.' }),
  })
  .strict()

/** A key as listed: never its value or hash. */
export const apiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  tenants: z.array(z.string()).nullable(),
  created_at: timestampSchema,
  created_by: z.string(),
  last_used_at: optionalTimestampSchema,
  revoked_at: optionalTimestampSchema,
})

/** The answer to a create: the key's value is shown this once. Answered with `cache-control: no-store`. */
export const createdApiKeySchema = apiKeySchema.extend({
  key: z.string().meta({ description: 'The secret; store it now, it is never shown again.' }),
})

export const apiKeyListSchema = z.object({ data: z.array(apiKeySchema) })

export type CreateApiKeyBody = z.input<typeof createApiKeyBodySchema>
export type ApiKey = z.output<typeof apiKeySchema>
export type CreatedApiKey = z.output<typeof createdApiKeySchema>
export type ApiKeyList = z.output<typeof apiKeyListSchema>
