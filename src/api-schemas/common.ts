/**
 * Shapes shared by every `/v1` operation: timestamps, the error body and its codes. This directory is the one
 * source of the HTTP API's shapes: the server's routes validate requests with these schemas, the OpenAPI
 * document (src/server/openapi.ts) is generated from them, and the typed client (src/client/) takes its types
 * from them (type-only, so the client carries no runtime dependency). Only zod and the domain vocabulary are
 * imported here, never server or store code.
 */
import { z } from 'zod'
import { ERROR_CODES, type ErrorCode } from '../domain/errors.ts'

/** A point in time as the API writes it: ISO 8601 in UTC with milliseconds. */
export const timestampSchema = z.string().meta({ format: 'date-time', description: 'ISO 8601, UTC' })

/** A point in time that may not have happened (yet). */
export const optionalTimestampSchema = timestampSchema.nullable()

/** Every stable error code sp-connect reports (src/core/errors.ts), in table order. */
const ERROR_CODE_LIST = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]

export const errorCodeSchema = z
  .enum(ERROR_CODE_LIST)
  .meta({ description: 'A stable error code; the table in src/core/errors.ts decides status and message.' })

/** `{error: {code, message[, detail]}}`: every failed `/v1` call answers this. */
export const errorResponseSchema = z.object({
  error: z.object({
    code: errorCodeSchema,
    message: z.string().meta({ description: 'A fixed, user-safe message for the code.' }),
    detail: z.string().optional().meta({
      description: 'For `invalid_request` only: which parameters were invalid (never their values).',
    }),
  }),
})

export type ErrorResponse = z.output<typeof errorResponseSchema>
