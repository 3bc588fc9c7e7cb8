/** Login requests: authorizations a seller started on Amazon, handed to the app's sign-in page. */
import { z } from 'zod'
import { REGIONS } from '../domain/regions.ts'
import { LOGIN_REQUEST_STATUSES } from '../store/login-request-store.ts'
import { timestampSchema } from './common.ts'

/** Plain text without control characters. */
const plainText = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}]+$/u)

/** `POST /v1/login-requests/{id}/approve` body. */
export const approveLoginRequestBodySchema = z
  .object({
    tenant_id: plainText(256),
    tenant_name: plainText(120)
      .optional()
      .meta({ description: 'Shown to the seller on the confirmation page (escaped); plain text only.' }),
  })
  .strict()

export const loginRequestSchema = z.object({
  status: z.enum([...LOGIN_REQUEST_STATUSES, 'expired']),
  selling_partner_id: z.string(),
  region: z.enum(REGIONS),
  tenant_id: z.string().nullable(),
  tenant_name: z.string().nullable(),
  reauthorization: z
    .boolean()
    .meta({ description: 'True when the seller is already connected to this tenant.' }),
  expires_at: timestampSchema,
})

export const loginRequestApprovalSchema = z.object({
  redirect_url: z.string().meta({ format: 'uri', description: 'Send the browser here.' }),
  expires_at: timestampSchema,
  request: loginRequestSchema,
})

export type ApproveLoginRequestBody = z.input<typeof approveLoginRequestBodySchema>
export type LoginRequest = z.output<typeof loginRequestSchema>
export type LoginRequestApproval = z.output<typeof loginRequestApprovalSchema>
