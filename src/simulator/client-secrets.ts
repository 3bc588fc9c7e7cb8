/**
 * Client-secret rotation on a simulated app (spapi-facts.md §7.1): a new `amzn1.oa2-cs.v1.<hex>` secret
 * valid 180 days, and every secret that was valid before stays valid 7 more days, then LWA answers
 * `invalid_client`. The app's `clientSecrets` array is changed in place, so the registry sees it at once.
 */
import { randomBytes } from 'node:crypto'
import type { SimulatedApp, SimulatedClientSecret } from './types.ts'

const DAY_MS = 24 * 3600_000
/** How long the old secret keeps working after a rotation (Amazon's sample: 7 days). */
export const OLD_SECRET_GRACE_MS = 7 * DAY_MS
/** Amazon requires a rotation every 180 days. */
export const SECRET_LIFETIME_MS = 180 * DAY_MS
/** Secrets expired longer ago than this are dropped at the next rotation, so the state file stays small. */
const FORGET_EXPIRED_AFTER_MS = 30 * DAY_MS

export function isLive(secret: SimulatedClientSecret, now: number): boolean {
  return secret.expiresAt === null || secret.expiresAt > now
}

function newClientSecret(): string {
  return `amzn1.oa2-cs.v1.${randomBytes(32).toString('hex')}`
}

interface Rotation {
  readonly newClientSecret: string
  readonly newExpiresAt: number
  readonly oldExpiresAt: number
}

/** Rotates the app's secret at `now`; returns what the APPLICATION_OAUTH_CLIENT_NEW_SECRET notification says. */
export function rotateSecret(app: SimulatedApp, now: number): Rotation {
  const oldExpiresAt = now + OLD_SECRET_GRACE_MS
  expireSecretsBy(app, oldExpiresAt, now)
  const kept = app.clientSecrets.filter(
    (s) => s.expiresAt === null || s.expiresAt > now - FORGET_EXPIRED_AFTER_MS,
  )
  const secret: SimulatedClientSecret = {
    secret: newClientSecret(),
    expiresAt: now + SECRET_LIFETIME_MS,
    createdAt: now,
  }
  app.clientSecrets.splice(0, app.clientSecrets.length, ...kept, secret)
  return { newClientSecret: secret.secret, newExpiresAt: secret.expiresAt ?? 0, oldExpiresAt }
}

/** Every secret still live at `now` expires at `expiresAt` at the latest. */
export function expireSecretsBy(app: SimulatedApp, expiresAt: number, now: number): void {
  for (const s of app.clientSecrets) {
    if (isLive(s, now) && (s.expiresAt === null || s.expiresAt > expiresAt)) s.expiresAt = expiresAt
  }
}

/**
 * Puts the secrets saved in the state file back on the app (in place), saved ones first in their order, then
 * any configured secret the file does not know (e.g. an apps file edited since).
 */
export function restoreSecrets(app: SimulatedApp, saved: readonly SimulatedClientSecret[]): void {
  const merged: SimulatedClientSecret[] = saved.map((s) => ({ ...s }))
  for (const s of app.clientSecrets) if (!merged.some((m) => m.secret === s.secret)) merged.push(s)
  app.clientSecrets.splice(0, app.clientSecrets.length, ...merged)
}
