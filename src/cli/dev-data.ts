/**
 * The dev data folder: generated development credentials (an app registered with the built-in simulator),
 * the encryption keyring and an API key, kept in `config.json` (mode 0600) beside the SQLite database, so a
 * restart keeps every connection. `dev.json` records where the running dev server listens, for the other
 * commands.
 *
 * The keyring is `encryptionKeys: [{id, key}, …]`, primary first (`sp-connect keys rotate --data DIR` adds a
 * new primary and keeps the older keys). Folders made before rotation existed hold a single
 * `encryptionKey: {id, key}`; they are read as a one-key ring and rewritten in the new form only by a rotation.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { z } from 'zod'
import type { AppConfig } from '../config.ts'
import { decodeKeyMaterial, type KeyringKey } from '../core/crypto/keyring.ts'
import { sha256 } from '../core/encoding.ts'

const DEFAULT_DATA_DIR = '.sp-connect'
export const DEFAULT_DEV_PORT = 3000
/** Where the dev server mounts the simulator. */
export const SIMULATOR_MOUNT = '/__amazon'

const devKeySchema = z.object({ id: z.string(), key: z.string() })
/** One key of the dev keyring: an id and 32 bytes of base64. */
type DevEncryptionKey = z.infer<typeof devKeySchema>

const devDataSchema = z.object({
  version: z.literal(1),
  appId: z.string(),
  appName: z.string(),
  lwaClientId: z.string(),
  lwaClientSecret: z.string(),
  simulatorSigningSecret: z.string(),
  /** Primary first. */
  encryptionKeys: z.array(devKeySchema).min(1),
  apiKey: z.string(),
  /**
   * HMAC key of the `sp-connect-signature` header for `sp-connect dev --webhook-url`; made the first time dev
   * runs with a webhook URL, then kept so a receiver configured with it keeps verifying across restarts.
   */
  webhookSecret: z.string().min(32).optional(),
})
type DevData = z.infer<typeof devDataSchema>

/** What config.json may hold: the keyring, or the single key of folders made before rotation existed. */
const devDataFileSchema = devDataSchema
  .extend({ encryptionKeys: z.array(devKeySchema).min(1).optional(), encryptionKey: devKeySchema.optional() })
  .transform(({ encryptionKey, encryptionKeys, ...rest }, ctx): DevData => {
    const keys = encryptionKeys ?? (encryptionKey ? [encryptionKey] : undefined)
    if (keys === undefined) {
      ctx.addIssue({ code: 'custom', message: 'encryptionKeys is required' })
      return z.NEVER
    }
    return { ...rest, encryptionKeys: keys }
  })

const devRuntimeSchema = z.object({ publicUrl: z.string(), pid: z.number() })

export function resolveDataDir(dir: string | undefined): string {
  return resolve(dir ?? DEFAULT_DATA_DIR)
}

export function loadOrCreateDevData(dir: string): DevData {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, 'config.json')
  if (existsSync(file)) return readDevData(file)
  const data: DevData = {
    version: 1,
    appId: `amzn1.sp.solution.${randomUUID()}`,
    appName: 'My SP-API app (development)',
    lwaClientId: `amzn1.application-oa2-client.${randomBytes(16).toString('hex')}`,
    lwaClientSecret: `amzn1.oa2-cs.v1.${randomBytes(32).toString('hex')}`,
    simulatorSigningSecret: randomBytes(32).toString('base64url'),
    encryptionKeys: [
      { id: `dev-${randomBytes(3).toString('hex')}`, key: randomBytes(32).toString('base64') },
    ],
    apiKey: `spc_dev_${randomBytes(24).toString('base64url')}`,
  }
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(file, 0o600)
  return data
}

function readDevData(file: string): DevData {
  const parsed = devDataFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')))
  if (!parsed.success)
    throw new Error(`${file} is not a valid sp-connect dev config; move it away to start afresh.`)
  return parsed.data
}

/**
 * Makes `key` the primary of the folder's keyring, keeping every older key (they still decrypt what is not yet
 * re-encrypted). The file is replaced atomically (written beside it, then renamed), so a kill leaves either the
 * old or the new keyring, never a torn file; fields this version does not know are kept.
 */
export function addDevPrimaryKey(dir: string, key: DevEncryptionKey): DevData {
  const file = join(dir, 'config.json')
  const current = readDevData(file)
  if (current.encryptionKeys.some((k) => k.id === key.id))
    throw new Error(`The dev keyring already has a key "${key.id}".`)
  return rewriteDevData(file, (raw) => {
    delete raw['encryptionKey']
    return { ...raw, encryptionKeys: [key, ...current.encryptionKeys] }
  })
}

/**
 * The folder's webhook secret, generated and stored in config.json (atomically, other fields kept) the first
 * time it is asked for.
 */
export function ensureDevWebhookSecret(dir: string): string {
  const file = join(dir, 'config.json')
  const current = readDevData(file)
  if (current.webhookSecret !== undefined) return current.webhookSecret
  const secret = `whsec_dev_${randomBytes(32).toString('base64url')}`
  const next = rewriteDevData(file, (raw) => ({ ...raw, webhookSecret: secret }))
  return next.webhookSecret ?? secret
}

/** Replaces config.json with `change(raw)`: written beside it, then renamed, so a kill never tears it. */
function rewriteDevData(
  file: string,
  change: (raw: Record<string, unknown>) => Record<string, unknown>,
): DevData {
  const next = change(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600, flag: 'wx' })
    chmodSync(tmp, 0o600)
    renameSync(tmp, file)
  } finally {
    rmSync(tmp, { force: true })
  }
  return readDevData(file)
}

/** The pid of the `sp-connect dev` that last ran on this folder, if dev.json names one. */
export function readDevPid(dir: string): number | undefined {
  const file = join(dir, 'dev.json')
  if (!existsSync(file)) return undefined
  const parsed = devRuntimeSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')))
  return parsed.success ? parsed.data.pid : undefined
}

export function writeDevRuntime(dir: string, publicUrl: string): void {
  writeFileSync(join(dir, 'dev.json'), `${JSON.stringify({ publicUrl, pid: process.pid }, null, 2)}\n`, {
    mode: 0o600,
  })
}

/** The public URL of the dev server that last ran on this folder, or the default one. */
export function readDevPublicUrl(dir: string): string {
  const file = join(dir, 'dev.json')
  if (existsSync(file)) {
    const parsed = devRuntimeSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')))
    if (parsed.success) return parsed.data.publicUrl
  }
  return `http://localhost:${DEFAULT_DEV_PORT}`
}

/** The folder's keyring in the form `Keyring` takes, primary first. */
export function devKeyring(data: DevData): KeyringKey[] {
  return data.encryptionKeys.map(({ id, key }) => ({ id, key: decodeKeyMaterial(key, id) }))
}

/** What `sp-connect dev`'s flags change in its configuration; the other commands use the defaults. */
interface DevOptions {
  /** Webhook endpoints (`--webhook-url`) and the folder's webhook secret. */
  readonly webhooks?: { readonly urls: readonly string[]; readonly secret: string }
  /** Origins allowed in `return_to` (`--return-origin`). */
  readonly returnOrigins?: readonly string[]
  /** The simulated app is a Draft app: consent and Appstore redirects carry version=beta (`--draft`). */
  readonly draftApp?: boolean
  /** Listen address (`--host`). */
  readonly host?: string
}

/** The configuration of `sp-connect dev`: everything Amazon-side points at the simulator under /__amazon. */
export function devConfig(
  data: DevData,
  dir: string,
  publicUrl: string,
  port: number,
  options: DevOptions = {},
): AppConfig {
  const amazonBase = `${publicUrl}${SIMULATOR_MOUNT}`
  return Object.freeze({
    mode: 'dev',
    publicUrl,
    redirectUri: `${publicUrl}/callback`,
    appId: data.appId,
    draftApp: options.draftApp ?? false,
    lwaClientId: data.lwaClientId,
    lwaClientSecret: data.lwaClientSecret,
    amazon: Object.freeze({
      lwaTokenUrl: `${amazonBase}/auth/o2/token`,
      centralUrlTemplate: `${amazonBase}/{host}`,
      spapiUrlTemplate: `${amazonBase}/{host}`,
      spapiSandbox: false,
    }),
    database: { kind: 'sqlite' as const, path: join(dir, 'sp-connect.db') },
    keyring: devKeyring(data),
    apiKeys: [{ name: 'dev', hash: sha256(data.apiKey) }],
    tokenRefreshMarginMs: 5 * 60 * 1000,
    tokenLeaseMs: 60 * 1000,
    tokenDeadlineMs: 15 * 1000,
    stateTtlMs: 10 * 60 * 1000,
    returnOrigins: options.returnOrigins ?? [],
    // The built-in stand-in for the app's sign-in page (server/routes/dev-sign-in.ts).
    appSignInUrl: `${publicUrl}/dev/sign-in`,
    brand: { name: data.appName, logoUrl: null, color: null },
    sellerStartUrl: null,
    webhooks: options.webhooks ?? { urls: [], secret: null },
    refresher: { enabled: true, concurrency: 4, ratePerSecond: 5 },
    // On, as in production, but ten times looser: on loopback the developer, their backend and their browser
    // tests are all one client address.
    rateLimits: {
      api: { perSecond: 200, burst: 1000 },
      browser: { perSecond: 20, burst: 300 },
      authFailuresPerMinute: 200,
    },
    trustedProxyHops: 0,
    insecureCookies: true,
    port,
    host: options.host ?? '127.0.0.1',
    logLevel: 'info',
  })
}
