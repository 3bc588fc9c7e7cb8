/**
 * Which sp-connect a CLI command works on: the dev data folder (`--data DIR`, default ./.sp-connect) or, when
 * DATABASE_URL is set and no --data is given, the production configuration from the environment. Commands
 * work alongside a running service: they share its database, never its memory.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type AppConfig, loadConfigFromEnv } from '../config.ts'
import { type Deps, defaultDeps } from '../core/deps.ts'
import { SpConnectError } from '../domain/errors.ts'
import { openRuntime, type Runtime } from '../runtime.ts'
import { devConfig, loadOrCreateDevData, readDevPublicUrl, resolveDataDir } from './dev-data.ts'

export interface TargetOptions {
  readonly data?: string
}

export function resolveConfig(options: TargetOptions, env: NodeJS.ProcessEnv = process.env): AppConfig {
  if (options.data === undefined && env['DATABASE_URL']) return loadConfigFromEnv(env)
  const dir = resolveDataDir(options.data)
  // Only `dev` creates a data folder; a mistyped --data must not quietly start an empty one.
  if (!existsSync(join(dir, 'config.json'))) {
    throw new SpConnectError('invalid_request', {
      detail: `no sp-connect data folder at ${dir}: run \`sp-connect dev\` first, pass --data DIR, or set DATABASE_URL`,
    })
  }
  const publicUrl = readDevPublicUrl(dir)
  return devConfig(loadOrCreateDevData(dir), dir, publicUrl, Number(new URL(publicUrl).port || 80))
}

export async function withRuntime<T>(
  options: TargetOptions,
  work: (runtime: Runtime) => Promise<T>,
  deps: Deps = defaultDeps(),
): Promise<T> {
  const runtime = await openRuntime(resolveConfig(options), deps)
  try {
    return await work(runtime)
  } finally {
    await runtime.close()
  }
}
