/**
 * What the container image runs, checked without building it (CI has no registry to pull `node:24-slim` from):
 * the Dockerfile's runtime stage and compose.yaml are read as data, and then the image's exact entry command
 * and HEALTHCHECK are run against the package installed from its tarball (the build stage installs the same
 * tarball into /app), with only the data folder writable, as under `docker run --read-only`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import {
  childEnv,
  installedPackageRoot,
  installTarball,
  packTarball,
  REPO_ROOT,
  SETUP_TIMEOUT_MS,
  sh,
} from '../helpers/package.ts'

const STEP_TIMEOUT_MS = 90_000
/** Where the Dockerfile's build stage puts the unpacked tarball, which the runtime stage copies as is. */
const IMAGE_PACKAGE_ROOT = '/app'
/** The only folder the image's user may write. */
const IMAGE_DATA_DIR = '/data'

interface Instruction {
  readonly keyword: string
  readonly args: string
}

/** The Dockerfile's instructions per stage (comments dropped, `\` continuations joined). */
function readDockerfile(): Instruction[][] {
  const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8')
  const lines = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replaceAll(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
  const stages: Instruction[][] = [[]]
  for (const line of lines) {
    const [keyword = '', ...rest] = line.split(/\s+/)
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') }
    if (instruction.keyword === 'FROM') stages.push([])
    stages.at(-1)?.push(instruction)
  }
  return stages
}

/** The arguments of the stage's last `keyword` instruction. */
function last(stage: readonly Instruction[], keyword: string): string {
  const found = stage.findLast((instruction) => instruction.keyword === keyword)
  if (!found) throw new Error(`the runtime stage has no ${keyword}`)
  return found.args
}

/** An exec-form (JSON array) argument list; the shell form would put `sh -c` (and PID 1 trouble) in between. */
function execForm(args: string): string[] {
  const parsed = JSON.parse(args) as unknown
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) {
    throw new Error(`not an exec-form JSON array: ${args}`)
  }
  return parsed
}

/** `KEY=value` pairs of every ENV instruction of the stage (values without spaces or quotes, as ours are). */
function envOf(stage: readonly Instruction[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const instruction of stage.filter((i) => i.keyword === 'ENV')) {
    for (const pair of instruction.args.split(/\s+/)) {
      const [name = '', value = ''] = pair.split('=')
      env[name] = value
    }
  }
  return env
}

const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>
}
const stages = readDockerfile()
const build = stages[1] ?? []
const runtime = stages.at(-1) ?? []
const entrypoint = execForm(last(runtime, 'ENTRYPOINT'))
const command = execForm(last(runtime, 'CMD'))
const healthcheck = last(runtime, 'HEALTHCHECK')
const healthcheckCommand = execForm(healthcheck.slice(healthcheck.indexOf(' CMD ') + ' CMD '.length))

describe('the Dockerfile', () => {
  it('builds in one stage and runs the packed package in a node 24 slim stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3) // the ARG preamble, build, runtime
    const baseImage = stages[0]?.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE='))
    expect(baseImage?.args).toBe('NODE_IMAGE=node:24-slim')
    expect(last(runtime, 'FROM')).toMatch(/^\$\{NODE_IMAGE\} AS runtime$/)
    const buildSteps = build.filter((i) => i.keyword === 'RUN').map((i) => i.args)
    expect(buildSteps.join('\n')).toMatch(/npm ci .*\n.*npm run build .*npm pack .*tar -xzf .* -C \/app /s)
    expect(buildSteps.join('\n')).toContain('npm ci --omit=dev')
    expect(runtime.filter((i) => i.keyword === 'COPY').map((i) => i.args)).toEqual([
      `--from=build --chown=0:0 ${IMAGE_PACKAGE_ROOT} ${IMAGE_PACKAGE_ROOT}`,
    ])
  })

  it("runs the package's bin, `serve`, with node", () => {
    const bin = packageJson.bin['sp-connect']
    expect(bin).toBeDefined()
    expect(entrypoint).toEqual(['node', posix.join(IMAGE_PACKAGE_ROOT, bin ?? '')])
    expect(command).toEqual(['serve'])
  })

  it('runs as a non-root user and writes only to the data volume', () => {
    const [user = '', group = ''] = last(runtime, 'USER').split(':')
    expect(user).toMatch(/^[1-9]\d*$/) // numeric, so Kubernetes' runAsNonRoot can check it
    expect(group).toMatch(/^[1-9]\d*$/)
    expect(last(runtime, 'VOLUME')).toBe(`["${IMAGE_DATA_DIR}"]`)
    expect(envOf(runtime)['DATABASE_URL']).toMatch(new RegExp(`^${IMAGE_DATA_DIR}/[^/]+$`))
  })

  it('checks /healthz with node, not curl', () => {
    expect(healthcheckCommand.slice(0, 2)).toEqual(['node', '-e'])
    expect(healthcheckCommand[2]).toContain('/healthz')
  })
})

interface ComposeService {
  readonly image?: string
  readonly build?: unknown
  readonly command?: string[]
  readonly env_file?: string[]
  readonly environment?: Record<string, string>
  readonly read_only?: boolean
  readonly user?: string
}

describe('compose.yaml', () => {
  const compose = parseYaml(readFileSync(join(REPO_ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>
  }
  const services = Object.entries(compose.services)
  const instances = services.filter(([, service]) => service.build !== undefined)

  it('runs PostgreSQL and two sp-connect instances on the same database and secrets', () => {
    const postgres = services.filter(([, service]) => service.image?.startsWith('postgres:'))
    expect(postgres).toHaveLength(1)
    const [postgresName] = postgres[0] ?? []
    expect(instances).toHaveLength(2)
    const urls = new Set(instances.map(([, service]) => service.environment?.['DATABASE_URL']))
    expect(urls.size).toBe(1)
    const [url = ''] = urls
    expect(new URL(url.replace(/\$\{[^}]+\}/, 'secret')).host).toBe(`${postgresName}:5432`)
    expect(new Set(instances.map(([, service]) => JSON.stringify(service.env_file))).size).toBe(1)
    for (const [, service] of instances) {
      expect(service.command).toEqual(command)
      expect(service.read_only).toBe(true)
      expect(service.user).toBe(last(runtime, 'USER'))
    }
  })
})

/** Every path under `dir` with its size and modification time: any write shows up as a difference. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((path) => {
      const stat = statSync(join(dir, path))
      return `${path} ${stat.size} ${stat.mtimeMs}`
    })
}

/** Runs the image's HEALTHCHECK command as Docker would, `retries` times apart; true once it exits 0. */
async function healthy(env: NodeJS.ProcessEnv, cwd: string): Promise<boolean> {
  const [, ...args] = healthcheckCommand
  for (let attempt = 0; attempt < 60; attempt += 1) {
    const child = spawn(process.execPath, args, { cwd, env, stdio: 'ignore' })
    const [code] = (await once(child, 'exit')) as [number | null]
    if (code === 0) return true
    await sleep(500)
  }
  return false
}

describe('the image entry command, run from the installed tarball with a read-only root', () => {
  let scratch: string
  let readOnly: string[] = []
  let serving: ChildProcess | undefined

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'sp-connect-image-'))
    await installTarball(await packTarball(), join(scratch, 'root'))
  }, SETUP_TIMEOUT_MS)

  afterAll(async () => {
    serving?.kill('SIGKILL')
    if (!scratch) return
    // Writable again, or a non-root runner could not delete the folders.
    for (const dir of readOnly) await sh('chmod', ['-R', 'u+w', dir], scratch)
    rmSync(scratch, { recursive: true, force: true })
  })

  it('serves /healthz, passes its HEALTHCHECK and writes nothing outside the data folder', {
    timeout: STEP_TIMEOUT_MS,
  }, async () => {
    const root = join(scratch, 'root')
    const packageRoot = installedPackageRoot(root)
    const home = join(scratch, 'home')
    const tmp = join(scratch, 'tmp')
    const data = join(scratch, 'data')
    for (const dir of [home, tmp, data]) mkdirSync(dir, { mode: 0o700 })
    readOnly = [root, home, tmp]
    for (const dir of readOnly) await sh('chmod', ['-R', 'a-w', dir], scratch)
    // Root ignores file modes (CI may run as root), so the snapshots are what proves nothing was written.
    const before = readOnly.map(snapshot)

    const inImage = (path: string) =>
      path.replace(IMAGE_PACKAGE_ROOT, packageRoot).replace(IMAGE_DATA_DIR, data)
    const imageEnv = envOf(runtime)
    const env = childEnv({
      ...Object.fromEntries(Object.entries(imageEnv).map(([name, value]) => [name, inImage(value)])),
      HOME: home,
      TMPDIR: tmp,
      PORT: '0',
      SP_CONNECT_HOST: '127.0.0.1',
      SP_CONNECT_PUBLIC_URL: 'https://connect.example.com',
      SP_CONNECT_APP_ID: 'amzn1.sp.solution.11111111-2222-3333-4444-555555555555',
      SP_CONNECT_LWA_CLIENT_ID: 'amzn1.application-oa2-client.0123456789abcdef',
      SP_CONNECT_LWA_CLIENT_SECRET: 'amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef',
      SP_CONNECT_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      SP_CONNECT_API_KEYS: `backend:${randomBytes(24).toString('hex')}`,
    })
    expect(env['DATABASE_URL']).toBe(join(data, 'sp-connect.db'))
    const [node, ...entryArgs] = entrypoint
    expect(node).toBe('node')
    const cwd = inImage(last(runtime, 'WORKDIR'))
    const child = spawn(process.execPath, [...entryArgs.map(inImage), ...command], { cwd, env })
    serving = child
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    const port = await new Promise<number>((resolve, reject) => {
      const look = () => {
        const match = /"port":(\d+)[^\n]*"msg":"sp-connect is serving"/.exec(stdout)
        if (match?.[1]) resolve(Number(match[1]))
      }
      child.stdout.on('data', look)
      child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${stderr}`)))
    })

    expect(await healthy({ ...env, PORT: String(port) }, cwd)).toBe(true)
    const health = await fetch(`http://127.0.0.1:${port}/healthz`)
    expect(health.status).toBe(200)

    child.kill('SIGTERM')
    const [code] = (await once(child, 'exit')) as [number | null]
    serving = undefined
    // A clean SIGTERM shutdown (Docker's stop signal), and no warning on stderr (such as an ExperimentalWarning).
    expect({ code, stderr: stderr.trim() }).toEqual({ code: 0, stderr: 'SIGTERM received, shutting down' })
    expect(readOnly.map(snapshot)).toEqual(before)
    expect(readdirSync(data).every((name) => name.startsWith('sp-connect.db'))).toBe(true)
    expect(readdirSync(data)).toContain('sp-connect.db')
  })
})
