/**
 * pino, with redaction as a second line of defence: code never logs tokens, secrets, codes or state values,
 * and should a field with such a name ever reach a log line anyway, pino replaces it.
 */
import { pino } from 'pino'
import type { Logger } from './core/deps.ts'

export const REDACTED_FIELDS = [
  'access_token',
  'refresh_token',
  'client_secret',
  'code',
  'spapi_oauth_code',
  'state',
  'amazon_state',
  'authorization',
  'cookie',
  'accessToken',
  'refreshToken',
  'clientSecret',
  'apiKey',
]

export function createLogger(level: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(
    {
      level,
      base: { service: 'sp-connect' },
      redact: {
        paths: [...REDACTED_FIELDS, ...REDACTED_FIELDS.map((f) => `*.${f}`)],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: destination === process.stderr ? 2 : 1, sync: false }),
  )
}
