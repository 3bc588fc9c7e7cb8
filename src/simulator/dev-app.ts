/** A ready-made app registration for local development, with ids and a secret in Amazon's shapes. */
import { randomBytes as nodeRandomBytes } from 'node:crypto'
import type { SimulatedApp } from './types.ts'

export interface DevAppOptions {
  /** OAuth Redirect URI(s); the first is the default. */
  redirectUri: string | string[]
  /** OAuth Login URI for the Appstore and re-authorization flows. */
  loginUri: string
  name?: string
  /** `published` by default, so the production flow (no `version=beta`) works. */
  status?: 'draft' | 'published'
  hybrid?: boolean
  /** Source of random bytes, for reproducible ids in tests; node:crypto by default. */
  randomBytes?: (size: number) => Uint8Array
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

function uuidFrom(bytes: Uint8Array): string {
  const b = Uint8Array.from(bytes.subarray(0, 16))
  // RFC 9562 version 4 / variant bits, so the app id looks like a real UUID.
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80
  const h = hex(b)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** Makes a SimulatedApp with a fresh app id, client id and one non-expiring client secret. */
export function generateDevApp(options: DevAppOptions): SimulatedApp {
  const random = options.randomBytes ?? ((size: number) => new Uint8Array(nodeRandomBytes(size)))
  const app: SimulatedApp = {
    appId: `amzn1.sp.solution.${uuidFrom(random(16))}`,
    clientId: `amzn1.application-oa2-client.${hex(random(16))}`,
    clientSecrets: [{ secret: `amzn1.oa2-cs.v1.${hex(random(32))}`, expiresAt: null }],
    name: options.name ?? 'Local development app',
    redirectUris: Array.isArray(options.redirectUri) ? [...options.redirectUri] : [options.redirectUri],
    loginUri: options.loginUri,
    status: options.status ?? 'published',
  }
  if (options.hybrid !== undefined) app.hybrid = options.hybrid
  return app
}
