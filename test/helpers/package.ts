/**
 * The npm package as a user gets it: `npm pack` (whose `prepack` runs `npm run build`) and the tarball installed
 * into an empty project, with child processes run there under this Node 24 (where Node refuses to strip types
 * under node_modules, so only the compiled `dist/` can work).
 *
 * Several test files need the tarball and vitest runs them in parallel, while `npm run build` deletes and
 * rewrites the repository's `dist/`: two packs at once would pack each other's half-written `dist/`. So the
 * tarball is built once per state of the sources, under a lock, and shared through a folder in the temp dir
 * named by a hash of what goes into it.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The repository root, from this file's own place (test/helpers/). */
export const REPO_ROOT = join(import.meta.dirname, '..', '..')
/** Packing (a full `tsc` build) and installing take minutes on a loaded machine. */
export const SETUP_TIMEOUT_MS = 240_000
const CACHE_PREFIX = 'sp-connect-tarball-'
const STALE_CACHE_MS = 24 * 60 * 60 * 1000

/**
 * The runner's environment without npm's `npm_*` variables (an outer `npm test` would otherwise configure the
 * inner npm), with this Node 24 first on PATH so `npm`, `npx` and the bin's `#!/usr/bin/env node` all use it.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.toLowerCase().startsWith('npm_')) env[name] = value
  }
  env['PATH'] = [dirname(process.execPath), env['PATH'] ?? ''].join(delimiter)
  return { ...env, ...extra }
}

/** Runs `command` to completion in `cwd`; rejects on a non-zero exit. */
export async function sh(
  command: string,
  args: readonly string[],
  cwd: string,
  extra: Record<string, string> = {},
) {
  return run(command, [...args], {
    cwd,
    env: childEnv(extra),
    timeout: SETUP_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  })
}

/** Runs `source` as a module in the consumer project (so bare `sp-connect` imports resolve there). */
export async function nodeIn(cwd: string, name: string, source: string, extra: Record<string, string> = {}) {
  const file = join(cwd, name)
  writeFileSync(file, source)
  return sh(process.execPath, [file], cwd, extra)
}

/** Every file under `dir`, as paths relative to `root`. */
function filesUnder(root: string, dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? filesUnder(root, path) : [path]
  })
}

/** A hash of everything `npm pack` reads: the manifest, the build configuration, README and src/. */
function sourcesHash(): string {
  const hash = createHash('sha256')
  const files = [
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'README.md',
    ...filesUnder(REPO_ROOT, 'src'),
  ]
  for (const file of files.sort()) {
    hash.update(`${file}\0`)
    hash.update(readFileSync(join(REPO_ROOT, file)))
    hash.update('\0')
  }
  return hash.digest('hex').slice(0, 16)
}

/** Removes tarballs of older source states left by earlier runs. */
function removeStaleCaches(keep: string): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(CACHE_PREFIX) || name === keep) continue
    const path = join(tmpdir(), name)
    if (Date.now() - statSync(path).mtimeMs > STALE_CACHE_MS) rmSync(path, { recursive: true, force: true })
  }
}

/**
 * The path of `sp-connect-<version>.tgz` packed from the repository as it is now. The first caller for a state
 * of the sources packs it (holding a lock folder, `mkdir` being atomic); the others wait for it.
 */
export async function packTarball(): Promise<string> {
  const name = `${CACHE_PREFIX}${sourcesHash()}`
  const cache = join(tmpdir(), name)
  const done = join(cache, 'tarball-path')
  const lock = `${cache}.lock`
  const deadline = Date.now() + SETUP_TIMEOUT_MS
  while (!existsSync(done)) {
    try {
      mkdirSync(lock)
    } catch {
      // Another worker is packing; a lock older than a whole setup belongs to a killed run.
      const lockedAt = statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()
      if (Date.now() - lockedAt > SETUP_TIMEOUT_MS) {
        rmSync(lock, { recursive: true, force: true })
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`)
      await sleep(500)
      continue
    }
    try {
      if (existsSync(done)) break
      const staging = `${cache}.staging`
      rmSync(staging, { recursive: true, force: true })
      mkdirSync(staging)
      const packed = await sh('npm', ['pack', '--json', '--pack-destination', staging], REPO_ROOT).catch(
        (error: Error & { stdout?: string }) => {
          // tsc reports on stdout, which execFile's message leaves out.
          throw new Error(`npm pack failed: ${error.message}\n${error.stdout ?? ''}`)
        },
      )
      const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [{ filename: string }]
      writeFileSync(join(staging, 'tarball-path'), info.filename)
      rmSync(cache, { recursive: true, force: true })
      renameSync(staging, cache)
      removeStaleCaches(name)
    } finally {
      rmSync(lock, { recursive: true, force: true })
    }
  }
  return join(cache, readFileSync(done, 'utf8'))
}

/** Creates `dir` as an empty ESM project and installs `tarball` into it, as `npm install <tarball>` does. */
export async function installTarball(tarball: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2)}\n`,
  )
  // The dependencies are in the npm cache from `npm ci`; the registry is only asked for what is missing.
  await sh('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], dir)
}

/** Where the installed package lives in a project made by {@link installTarball}. */
export function installedPackageRoot(dir: string): string {
  return join(dir, 'node_modules', 'sp-connect')
}
