/** Connections (one authorized seller or vendor account each) and the tokens issued for them. */
import { z } from 'zod'
import { isConnectionId, isTenantId } from '../core/ids.ts'
import { ACCOUNT_TYPES, REGIONS } from '../domain/regions.ts'
import { CONNECTION_STATUSES } from '../domain/statuses.ts'
import { optionalTimestampSchema, timestampSchema } from './common.ts'

/** `GET /v1/connections` query. */
export const listConnectionsQuerySchema = z
  .object({
    tenant_id: z
      .string()
      .refine(isTenantId)
      .optional()
      .meta({ description: 'Only this tenant’s connections.' }),
    status: z.enum(CONNECTION_STATUSES).optional(),
    // `<number>`: the client sends a number; the query string carries it as text.
    limit: z.coerce.number<number>().int().min(1).max(1000).default(100),
    after: z
      .string()
      .refine(isConnectionId)
      .optional()
      .meta({ description: 'The `next_after` of the previous page.' }),
  })
  .strict()

/** A connection as the API shows it: ids, status and times; never a ciphertext or token. */
export const connectionSchema = z.object({
  id: z.string(),
  selling_partner_id: z.string(),
  region: z.enum(REGIONS),
  account_type: z.enum(ACCOUNT_TYPES),
  tenant_id: z.string().nullable(),
  status: z.enum(CONNECTION_STATUSES),
  status_reason: z.string().nullable().meta({ description: 'An error code explaining the status, if any.' }),
  authorized_at: timestampSchema,
  reauthorize_by: timestampSchema.meta({ description: 'Amazon requires re-authorization every 365 days.' }),
  access_token_expires_at: optionalTimestampSchema,
  last_refresh_at: optionalTimestampSchema,
  last_refresh_error: z.string().nullable(),
  failure_count: z.number().int(),
  created_at: timestampSchema,
  updated_at: timestampSchema,
})

export const connectionListSchema = z.object({
  data: z.array(connectionSchema),
  next_after: z
    .string()
    .nullable()
    .meta({ description: 'Pass as `after` for the next page; null on the last page.' }),
})

/** An LWA access token, for one connection or grantless. Answered with `cache-control: no-store`. */
export const accessTokenSchema = z.object({
  access_token: z.string(),
  token_type: z.literal('bearer'),
  expires_at: timestampSchema,
})

/** `POST /v1/grantless-tokens` body. */
export const grantlessTokenBodySchema = z
  .object({
    scope: z
      .string()
      .min(1)
      .max(512)
      .meta({ description: 'The LWA scope, e.g. `sellingpartnerapi::notifications`.' }),
  })
  .strict()

export type Connection = z.output<typeof connectionSchema>
export type ConnectionList = z.output<typeof connectionListSchema>
export type ListConnectionsQuery = z.input<typeof listConnectionsQuerySchema>
export type AccessTokenResponse = z.output<typeof accessTokenSchema>
export type GrantlessTokenBody = z.input<typeof grantlessTokenBodySchema>
