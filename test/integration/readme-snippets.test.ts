/**
 * README's "Use it as a library" code, so it cannot rot: every ```ts block of that section is extracted as
 * written, saved into an empty project that installed the packed tarball, type-checked with `nodenext`, and
 * run there under Node 24 (which strips the types of files outside node_modules) against real parts: the
 * simulator as Amazon, a SQLite file, real HTTP on loopback.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signWebhook } from '../../src/core/events/signature.ts'
import {
  createSimulator,
  generateDevApp,
  type SimulatedApp,
  type Simulator,
  type SimulatorServer,
  startSimulatorServer,
} from '../../src/simulator/index.ts'
import { childEnv, installTarball, packTarball, REPO_ROOT, SETUP_TIMEOUT_MS, sh } from '../helpers/package.ts'

const STEP_TIMEOUT_MS = 90_000
const SECTION = '## Use it as a library'

/** The section's ```ts blocks, keyed by the sp-connect subpath each one imports first. */
function readmeSnippets(): Map<string, string> {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
  const start = readme.indexOf(SECTION)
  const end = readme.indexOf('\n## ', start + SECTION.length)
  const section = readme.slice(start, end === -1 ? undefined : end)
  const snippets = new Map<string, string>()
  for (const [, code = ''] of section.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const subpath = /from '(sp-connect(?:\/[a-z-]+)?)'/.exec(code)?.[1]
    if (!subpath) throw new Error(`a README snippet imports no sp-connect subpath:\n${code}`)
    snippets.set(subpath, code)
  }
  return snippets
}

/** A port free now, for a snippet that takes its port from PORT (and cannot report one it picked). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

interface Running {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves once stdout matches, rejects if the process exits first. */
  readonly printed: (pattern: RegExp) => Promise<void>
  readonly exited: Promise<number | null>
}

/** Starts `node <file>` in `cwd` with `env` on top of the runner's environment; `input` goes to stdin. */
function start(cwd: string, args: string[], env: Record<string, string>, input?: string): Running {
  const child = spawn(process.execPath, args, { cwd, env: childEnv(env) })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  child.stdin.end(input ?? '')
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    printed: (pattern) =>
      new Promise((resolve, reject) => {
        const look = () => {
          if (pattern.test(stdout)) resolve()
        }
        look()
        child.stdout.on('data', look)
        void exited.then((code) =>
          reject(new Error(`exited (${code}) before ${pattern}: ${stdout}${stderr}`)),
        )
      }),
  }
}

describe('README "Use it as a library", run against the installed tarball', () => {
  const snippets = readmeSnippets()
  let scratch: string
  let consumer: string
  let simulator: Simulator
  let simulatorServer: SimulatorServer
  let app: SimulatedApp
  const running: ChildProcess[] = []

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'sp-connect-readme-'))
    consumer = join(scratch, 'consumer')
    await installTarball(await packTarball(), consumer)
    for (const [subpath, code] of snippets) writeFileSync(join(consumer, fileFor(subpath)), code)
    app = generateDevApp({
      redirectUri: 'https://connect.example.com/callback',
      loginUri: 'https://connect.example.com/login',
    })
    simulator = createSimulator({ apps: [app] })
    simulatorServer = await startSimulatorServer(simulator, { port: 0 })
  }, SETUP_TIMEOUT_MS)

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL')
    await simulatorServer?.close()
    await simulator?.close()
    if (scratch) rmSync(scratch, { recursive: true, force: true })
  })

  function fileFor(subpath: string): string {
    return `readme-${subpath.replace('/', '-')}.ts`
  }

  function run(subpath: string, env: Record<string, string> = {}): Running {
    const started = start(consumer, [fileFor(subpath)], env)
    running.push(started.child)
    return started
  }

  it('has one snippet per documented subpath', () => {
    expect([...snippets.keys()].sort()).toEqual([
      'sp-connect',
      'sp-connect/simulator',
      'sp-connect/store',
      'sp-connect/webhooks',
    ])
  })

  it('type-checks every snippet under moduleResolution nodenext', { timeout: STEP_TIMEOUT_MS }, async () => {
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2024',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(REPO_ROOT, 'node_modules', '@types')],
        },
        include: ['readme-*.ts'],
      }),
    )
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    const result = await sh(process.execPath, [tsc, '-p', 'tsconfig.json'], consumer).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? String(error) }),
    )
    expect(result.stdout).toBe('')
  })

  it('sp-connect: serves, makes a connect link and gets a token for a connected account', {
    timeout: STEP_TIMEOUT_MS,
  }, async () => {
    const env = {
      SP_CONNECT_PUBLIC_URL: 'https://connect.example.com',
      SP_CONNECT_APP_ID: app.appId,
      SP_CONNECT_LWA_CLIENT_ID: app.clientId,
      SP_CONNECT_LWA_CLIENT_SECRET: app.clientSecrets.at(-1)?.secret ?? '',
      SP_CONNECT_LWA_TOKEN_URL: `${simulatorServer.url}/auth/o2/token`,
      SP_CONNECT_CENTRAL_URL_TEMPLATE: `${simulatorServer.url}/{host}`,
      SP_CONNECT_SPAPI_URL_TEMPLATE: `${simulatorServer.url}/{host}`,
      SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK: '1',
      DATABASE_URL: join(scratch, 'library.sqlite'),
      SP_CONNECT_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      SP_CONNECT_API_KEYS: `backend:${randomBytes(24).toString('hex')}`,
      SP_CONNECT_LOG_LEVEL: 'silent',
    }
    // A connected seller, as a self-authorized private app adds one: the installed CLI on the same database.
    const refreshToken = simulator.selfAuthorize(app.appId, 'A1README0SELLER', 'na')
    const bin = join(consumer, 'node_modules', 'sp-connect', 'dist', 'cli', 'main.js')
    const add = start(
      consumer,
      [bin, 'connections', 'add', '--selling-partner-id', 'A1README0SELLER', '--region', 'na'],
      env,
      `${refreshToken}\n`,
    )
    expect({ code: await add.exited, stderr: add.stderr() }).toEqual({ code: 0, stderr: '' })

    const port = await freePort()
    const snippet = run('sp-connect', { ...env, PORT: String(port) })
    await snippet.printed(/A1README0SELLER has a token until \d{4}-\d\d-\d\dT/)
    expect(snippet.stdout()).toMatch(/^send the user to https:\/\/connect\.example\.com\/connect\/s\/\S+$/m)
    const health = await fetch(`http://127.0.0.1:${port}/healthz`)
    expect(health.status).toBe(200)
    snippet.child.kill('SIGTERM')
    expect(await snippet.exited).toBe(0)
    expect(snippet.stdout()).not.toContain(refreshToken)
  })

  it('sp-connect/webhooks: the receiver accepts a signed delivery and refuses a tampered one', {
    timeout: STEP_TIMEOUT_MS,
  }, async () => {
    const secret = randomBytes(24).toString('base64url')
    const port = await freePort()
    const receiver = run('sp-connect/webhooks', { SP_CONNECT_WEBHOOK_SECRET: secret, PORT: String(port) })
    const body = JSON.stringify({ id: 'evt_readme', type: 'connection.created', data: { region: 'na' } })
    const deliver = (payload: string) =>
      fetch(`http://127.0.0.1:${port}/hooks`, {
        method: 'POST',
        headers: { 'sp-connect-signature': signWebhook(secret, Math.floor(Date.now() / 1000), body) },
        body: payload,
      })
    // The receiver prints nothing when it listens: knock until it answers.
    let accepted: Response | undefined
    for (let attempt = 0; attempt < 100 && !accepted; attempt += 1) {
      accepted = await deliver(body).catch(() => undefined)
      if (!accepted) await sleep(200)
    }
    expect(accepted?.status).toBe(204)
    expect((await deliver(`${body} `)).status).toBe(400)
    await receiver.printed(/^received connection\.created evt_readme$/m)
    receiver.child.kill('SIGTERM')
    await receiver.exited
  })

  it('sp-connect/simulator: answers a refresh of a self-authorized token', {
    timeout: STEP_TIMEOUT_MS,
  }, async () => {
    const snippet = run('sp-connect/simulator')
    expect(await snippet.exited).toBe(0)
    expect(snippet.stdout()).toBe('LWA answered 200\n')
  })

  it('sp-connect/store: runs without a database driver', { timeout: STEP_TIMEOUT_MS }, async () => {
    const snippet = run('sp-connect/store')
    expect(await snippet.exited).toBe(0)
    expect(snippet.stdout()).toBe('statuses: active, needs_reauthorization, disconnected\n')
  })
})
