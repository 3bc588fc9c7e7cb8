/**
 * Which sp-connect a CLI command works on: the dev data folder (`--data DIR`, default ./.sp-connect) or, when
 * DATABASE_URL is set and no --data is given, the production configuration from the environment. Commands
 * work alongside a running service: they share its database, never its memory.
 */
import { type AppConfig, loadConfigFromEnv } from '../config.ts'
import { type Deps, defaultDeps } from '../core/deps.ts'
import { openRuntime, type Runtime } from '../runtime.ts'
import { devConfig, loadOrCreateDevData, readDevPublicUrl, resolveDataDir } from './dev-data.ts'

export interface TargetOptions {
  readonly data?: string
}

export function resolveConfig(options: TargetOptions, env: NodeJS.ProcessEnv = process.env): AppConfig {
  if (options.data === undefined && env['DATABASE_URL']) return loadConfigFromEnv(env)
  const dir = resolveDataDir(options.data)
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
