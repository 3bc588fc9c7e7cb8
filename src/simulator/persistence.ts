/**
 * The simulator's state file: grants, revocations, access-token expiry marks, the serial counter, the
 * clock offset, the token-endpoint counters and rotated client secrets, so a restarted simulator keeps accepting the refresh
 * tokens it issued and keeps refusing the ones it revoked, and a rotated app keeps its new secret. Written
 * atomically (temp file + rename) with mode 0600 because it may hold the generated signing secret and
 * client secrets.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { rename, unlink, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { z } from 'zod'
import { REGIONS } from '../domain/regions.ts'

const countersSchema = z.object({
  total: z.number(),
  byGrant: z.object({
    authorization_code: z.number(),
    refresh_token: z.number(),
    client_credentials: z.number(),
    other: z.number(),
  }),
  byOutcome: z.object({ ok: z.number(), error: z.number(), fault: z.number() }),
})

export const grantRecordSchema = z.object({
  id: z.string(),
  serial: z.number().int(),
  sellingPartnerId: z.string(),
  appId: z.string(),
  clientId: z.string(),
  region: z.enum(REGIONS),
  issuedAt: z.number(),
  kind: z.enum(['oauth', 'self']),
})
export type GrantRecord = z.infer<typeof grantRecordSchema>

export const revocationSchema = z.object({
  sellingPartnerId: z.string(),
  /** Null: every app. */
  clientId: z.string().nullable(),
  upToSerial: z.number().int(),
  at: z.number(),
})
export type Revocation = z.infer<typeof revocationSchema>

export const accessExpirySchema = z.object({
  /** Null: every selling partner (and grantless tokens). */
  sellingPartnerId: z.string().nullable(),
  upToSerial: z.number().int(),
  at: z.number(),
})
export type AccessExpiry = z.infer<typeof accessExpirySchema>

const savedClientSecretSchema = z.object({
  secret: z.string().min(1),
  expiresAt: z.number().nullable(),
  createdAt: z.number().optional(),
})

export const persistedStateSchema = z.object({
  version: z.literal(1),
  /** Present only when the simulator generated its own signing secret. */
  signingSecret: z.string().optional(),
  clockOffsetMs: z.number(),
  serial: z.number().int().nonnegative(),
  grants: z.array(grantRecordSchema),
  revocations: z.array(revocationSchema),
  accessExpiries: z.array(accessExpirySchema),
  counters: countersSchema,
  /**
   * Client secrets of the apps whose secrets changed (rotation, enforced expiry), by client id, oldest first.
   * Absent in files written before rotation existed.
   */
  clientSecrets: z.record(z.string(), z.array(savedClientSecretSchema)).optional(),
})
export type PersistedState = z.infer<typeof persistedStateSchema>

/** Reads the state file; undefined when it does not exist. A corrupt file throws rather than losing grants. */
export function loadStateFile(path: string): PersistedState | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    raw = undefined
  }
  const parsed = persistedStateSchema.safeParse(raw)
  if (!parsed.success) {
    throw new TypeError('The simulator state file is not valid; move it away to start fresh.')
  }
  return parsed.data
}

/** Coalesces saves: many mutations in one tick become one write; `flush` waits for the last one. */
export class StateFileWriter {
  readonly #path: string
  readonly #snapshot: () => PersistedState
  #dirty = false
  #scheduled = false
  #chain: Promise<void> = Promise.resolve()

  constructor(path: string, snapshot: () => PersistedState) {
    this.#path = path
    this.#snapshot = snapshot
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  }

  schedule(): void {
    this.#dirty = true
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      void this.flush().catch(() => {
        // A failed background write is retried by the next mutation or by close(), which reports it.
        this.#dirty = true
      })
    })
  }

  flush(): Promise<void> {
    const run = async (): Promise<void> => {
      if (!this.#dirty) return
      this.#dirty = false
      const tmp = `${this.#path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
      try {
        await writeFile(tmp, `${JSON.stringify(this.#snapshot())}\n`, { mode: 0o600 })
        await rename(tmp, this.#path)
      } catch (err) {
        this.#dirty = true
        await unlink(tmp).catch(() => undefined)
        throw err
      }
    }
    const next = this.#chain.then(run, run)
    this.#chain = next.catch(() => undefined)
    return next
  }
}
