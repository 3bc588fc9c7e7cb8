/** Connect sessions: links an app sends its users to, to connect (or re-authorize) a seller account. */
import { z } from 'zod'
import { ACCOUNT_TYPES, REGIONS } from '../domain/regions.ts'
import { timestampSchema } from './common.ts'

const marketplace = z
  .string()
  .min(2)
  .max(32)
  .optional()
  .meta({ description: 'A marketplace id or country code in the region; picks the consent page.' })
const returnTo = z
  .string()
  .min(1)
  .max(2048)
  .optional()
  .meta({ description: 'Where the browser goes when done: the public URL or an allowed return origin.' })

/** Connect a new seller account for a tenant. */
export const newConnectionBodySchema = z
  .object({
    tenant_id: z.string().min(1).max(256),
    region: z.enum(REGIONS),
    account_type: z.enum(ACCOUNT_TYPES).default('seller'),
    marketplace,
    return_to: returnTo,
  })
  .strict()

/** Re-authorize one connection: everything but the return URL comes from the connection itself. */
export const reconnectBodySchema = z
  .object({
    connection_id: z.string().min(1).max(128),
    marketplace,
    return_to: returnTo,
  })
  .strict()

/** `POST /v1/connect-sessions` body: a body with `connection_id` is a reconnect. */
export const connectSessionBodySchema = z.union([newConnectionBodySchema, reconnectBodySchema])

export const connectSessionSchema = z.object({
  url: z.string().meta({ format: 'uri', description: 'Send the user’s browser here; single use.' }),
  expires_at: timestampSchema,
  connection_id: z
    .string()
    .optional()
    .meta({ description: 'For a reconnect: the connection it re-authorizes.' }),
})

export type ConnectSessionBody = z.input<typeof connectSessionBodySchema>
export type ConnectSession = z.output<typeof connectSessionSchema>
