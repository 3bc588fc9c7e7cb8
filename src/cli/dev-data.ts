/**
 * The dev data folder: generated development credentials (an app registered with the built-in simulator),
 * an encryption key and an API key, kept in `config.json` (mode 0600) beside the SQLite database, so a restart
 * keeps every connection. `dev.json` records where the running dev server listens, for the other commands.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { z } from 'zod'
import type { AppConfig } from '../config.ts'
import { sha256 } from '../core/encoding.ts'

export const DEFAULT_DATA_DIR = '.sp-connect'
export const DEFAULT_DEV_PORT = 3000
/** Where the dev server mounts the simulator. */
export const SIMULATOR_MOUNT = '/__amazon'

const devDataSchema = z.object({
  version: z.literal(1),
  appId: z.string(),
  appName: z.string(),
  lwaClientId: z.string(),
  lwaClientSecret: z.string(),
  simulatorSigningSecret: z.string(),
  encryptionKey: z.object({ id: z.string(), key: z.string() }),
  apiKey: z.string(),
})
export type DevData = z.infer<typeof devDataSchema>

const devRuntimeSchema = z.object({ publicUrl: z.string(), pid: z.number() })

export function resolveDataDir(dir: string | undefined): string {
  return resolve(dir ?? DEFAULT_DATA_DIR)
}

export function loadOrCreateDevData(dir: string): DevData {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, 'config.json')
  if (existsSync(file)) {
    const parsed = devDataSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')))
    if (!parsed.success)
      throw new Error(`${file} is not a valid sp-connect dev config; move it away to start afresh.`)
    return parsed.data
  }
  const data: DevData = {
    version: 1,
    appId: `amzn1.sp.solution.${randomUUID()}`,
    appName: 'My SP-API app (development)',
    lwaClientId: `amzn1.application-oa2-client.${randomBytes(16).toString('hex')}`,
    lwaClientSecret: `amzn1.oa2-cs.v1.${randomBytes(32).toString('hex')}`,
    simulatorSigningSecret: randomBytes(32).toString('base64url'),
    encryptionKey: { id: `dev-${randomBytes(3).toString('hex')}`, key: randomBytes(32).toString('base64') },
    apiKey: `spc_dev_${randomBytes(24).toString('base64url')}`,
  }
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(file, 0o600)
  return data
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

/** The configuration of `sp-connect dev`: everything Amazon-side points at the simulator under /__amazon. */
export function devConfig(data: DevData, dir: string, publicUrl: string, port: number): AppConfig {
  const amazonBase = `${publicUrl}${SIMULATOR_MOUNT}`
  return Object.freeze({
    mode: 'dev',
    publicUrl,
    redirectUri: `${publicUrl}/callback`,
    appId: data.appId,
    draftApp: false,
    lwaClientId: data.lwaClientId,
    lwaClientSecret: data.lwaClientSecret,
    amazon: Object.freeze({
      lwaTokenUrl: `${amazonBase}/auth/o2/token`,
      centralUrlTemplate: `${amazonBase}/{host}`,
      spapiUrlTemplate: `${amazonBase}/{host}`,
      spapiSandbox: false,
    }),
    database: { kind: 'sqlite' as const, path: join(dir, 'sp-connect.db') },
    keyring: [
      { id: data.encryptionKey.id, key: new Uint8Array(Buffer.from(data.encryptionKey.key, 'base64')) },
    ],
    apiKeys: [{ name: 'dev', hash: sha256(data.apiKey) }],
    tokenRefreshMarginMs: 5 * 60 * 1000,
    stateTtlMs: 10 * 60 * 1000,
    returnOrigins: [],
    insecureCookies: true,
    port,
    host: '127.0.0.1',
    logLevel: 'info',
  })
}
