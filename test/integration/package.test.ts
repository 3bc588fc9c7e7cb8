/**
 * The package as a user gets it: `npm pack` (whose `prepack` runs `npm run build`) into a temp folder, the
 * tarball installed into an empty project, and everything below run there under plain Node 24, where Node
 * refuses to strip types under node_modules, so only the compiled `dist/` can work. Checks each subpath's
 * exports, that `node:sqlite` loads only when SQLite is used, the `sp-connect` bin, a webhook signed by the
 * repo's signer and checked by the installed verifier, a consumer type-checked with `nodenext`, and the
 * tarball linted by publint and arethetypeswrong (the tarball and the install: test/helpers/package.ts).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signWebhook } from '../../src/core/events/signature.ts'
import {
  childEnv,
  installTarball,
  nodeIn,
  packTarball,
  REPO_ROOT,
  SETUP_TIMEOUT_MS,
  sh,
} from '../helpers/package.ts'

const STEP_TIMEOUT_MS = 60_000

describe('the npm package, installed from its tarball', () => {
  let scratch: string
  let consumer: string
  let tarball: string

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'sp-connect-package-'))
    consumer = join(scratch, 'consumer')
    tarball = await packTarball()
    await installTarball(tarball, consumer)
  }, SETUP_TIMEOUT_MS)

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true })
  })

  it('exposes each documented subpath with its exports', { timeout: STEP_TIMEOUT_MS }, async () => {
    const { stdout } = await nodeIn(
      consumer,
      'exports.mjs',
      `const out = {}
for (const name of ['sp-connect', 'sp-connect/webhooks', 'sp-connect/simulator', 'sp-connect/store', 'sp-connect/node', 'sp-connect/client']) {
  const mod = await import(name)
  out[name] = Object.fromEntries(Object.entries(mod).map(([k, v]) => [k, typeof v]))
}
console.log(JSON.stringify(out))
`,
    )
    const exports = JSON.parse(stdout) as Record<string, Record<string, string>>
    expect(exports['sp-connect']).toMatchObject({
      createSpConnect: 'function',
      fromEnv: 'function',
      ConfigError: 'function',
      SpConnectError: 'function',
      isSpConnectError: 'function',
    })
    expect(exports['sp-connect/webhooks']).toEqual({
      verifyWebhook: 'function',
      parseSignatureHeader: 'function',
      SIGNATURE_HEADER: 'string',
      DEFAULT_TOLERANCE_SECONDS: 'number',
    })
    expect(exports['sp-connect/simulator']).toMatchObject({
      createSimulator: 'function',
      startSimulatorServer: 'function',
    })
    expect(exports['sp-connect/node']).toEqual({ toNodeHandler: 'function', BODY_ALREADY_READ: 'string' })
    expect(exports['sp-connect/client']).toEqual({
      createClient: 'function',
      SpConnectApiError: 'function',
      readApiError: 'function',
      CLIENT_OPERATIONS: 'object',
      UNEXPECTED_RESPONSE: 'string',
    })
    expect(exports['sp-connect/store']).toEqual({
      APP_SECRET_STATES: 'object',
      AUTH_FLOWS: 'object',
      CONNECTION_STATUSES: 'object',
      DELIVERY_STATUSES: 'object',
    })
  })

  it('loads node:sqlite only when a SQLite store is opened', { timeout: STEP_TIMEOUT_MS }, async () => {
    const { stdout } = await nodeIn(
      consumer,
      'sqlite.mjs',
      `const loaded = () => process.moduleLoadList.some((m) => m === 'NativeModule sqlite')
const seen = {}
await import('sp-connect/webhooks'); seen.webhooks = loaded()
await import('sp-connect/store'); seen.store = loaded()
const { createSpConnect, fromEnv } = await import('sp-connect'); seen.root = loaded()
const sp = await createSpConnect(fromEnv(process.env))
seen.opened = loaded()
const health = await sp.fetch(new Request('https://connect.example.com/healthz'))
const link = await sp.connectSessions.create({ tenantId: 'tenant-1', region: 'na' })
const connections = await sp.connections.list()
sp.start()
await sp.close()
console.log(JSON.stringify({ seen, health: health.status, link: link.url, connections: connections.length }))
`,
      {
        SP_CONNECT_PUBLIC_URL: 'https://connect.example.com',
        SP_CONNECT_APP_ID: 'amzn1.sp.solution.11111111-2222-3333-4444-555555555555',
        SP_CONNECT_LWA_CLIENT_ID: 'amzn1.application-oa2-client.0123456789abcdef',
        SP_CONNECT_LWA_CLIENT_SECRET: 'amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef',
        DATABASE_URL: join(scratch, 'library.sqlite'),
        SP_CONNECT_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        SP_CONNECT_API_KEYS: `backend:${'k'.repeat(40)}`,
        SP_CONNECT_REFRESHER: 'off',
        SP_CONNECT_LOG_LEVEL: 'silent',
      },
    )
    const result = JSON.parse(stdout) as {
      seen: Record<string, boolean>
      health: number
      link: string
      connections: number
    }
    expect(result.seen).toEqual({ webhooks: false, store: false, root: false, opened: true })
    expect(result.health).toBe(200)
    expect(result.link).toMatch(/^https:\/\/connect\.example\.com\/connect\/s\/[A-Za-z0-9_-]{43}$/)
    expect(result.connections).toBe(0)
  })

  it('runs the sp-connect bin from dist/', { timeout: STEP_TIMEOUT_MS }, async () => {
    // `--no`: never fetch some other `sp-connect` from the registry; only the installed bin may answer.
    const { stdout } = await sh('npx', ['--no', '--', 'sp-connect', '--help'], consumer)
    expect(stdout).toContain('Usage: sp-connect')
    expect(stdout).toMatch(/^\s+dev\b/m)
    expect(stdout).toMatch(/^\s+serve\b/m)
  })

  it('serves the dashboard from `npx sp-connect dev` in the installed project', {
    timeout: STEP_TIMEOUT_MS,
  }, async () => {
    const data = join(scratch, 'dev-data')
    const child = spawn('npx', ['--no', '--', 'sp-connect', 'dev', '--port', '0', '--data', data], {
      cwd: consumer,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so stopping it stops the server npx started, not only npx.
      detached: true,
    })
    try {
      child.stdout.setEncoding('utf8')
      let printed = ''
      const url = await new Promise<string>((resolve, reject) => {
        child.on('exit', (code) => reject(new Error(`sp-connect dev exited (${code}): ${printed}`)))
        child.stdout.on('data', (chunk: string) => {
          printed += chunk
          const match = /sp-connect dev is running: (http:\/\/localhost:\d+)\n/.exec(printed)
          if (match?.[1]) resolve(match[1])
        })
      })
      const page = await fetch(url)
      expect(page.status).toBe(200)
      expect(page.headers.get('content-type')).toContain('text/html')
      expect(await page.text()).toContain('Connect a seller account')
    } finally {
      if (child.pid !== undefined && child.exitCode === null) {
        const closed = once(child, 'close')
        process.kill(-child.pid, 'SIGTERM')
        await closed
      }
    }
  })

  it('passes publint on the tarball', { timeout: STEP_TIMEOUT_MS }, async () => {
    // `--no`: the devDependency in the repository's node_modules, never one fetched from the registry.
    const result = await sh('npx', ['--no', '--', 'publint', 'run', tarball, '--strict'], REPO_ROOT).then(
      ({ stdout }) => stdout,
      (error: { stdout?: string; stderr?: string }) => `failed\n${error.stdout ?? ''}${error.stderr ?? ''}`,
    )
    expect(result).toContain('All good!')
  })

  it('resolves every subpath to ESM with types under node16 and bundler (arethetypeswrong)', {
    timeout: STEP_TIMEOUT_MS,
  }, async () => {
    // esm-only: the package is ESM only, so `require()` (node16-cjs) and pre-exports resolution (node10) are
    // out of scope; every other resolution must be clean.
    const args = ['--no', '--', 'attw', '--pack', tarball, '--profile', 'esm-only', '--format', 'json']
    const { stdout } = await sh('npx', args, REPO_ROOT).catch((error: { stdout?: string }) => ({
      stdout: error.stdout ?? '',
    }))
    const report = JSON.parse(stdout) as {
      analysis: {
        entrypoints: Record<
          string,
          {
            resolutions: Record<
              string,
              { resolution?: { fileName: string }; implementationResolution?: { fileName: string } }
            >
          }
        >
      }
      problems: Record<string, { entrypoint: string; resolutionKind?: string }[]>
    }
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>
    }
    expect(Object.keys(report.analysis.entrypoints).sort()).toEqual(Object.keys(manifest.exports).sort())
    const inScope = Object.values(report.problems)
      .flat()
      .filter((problem) => problem.resolutionKind !== 'node10' && problem.resolutionKind !== 'node16-cjs')
    expect(inScope).toEqual([])
    for (const [subpath, entry] of Object.entries(report.analysis.entrypoints)) {
      if (subpath === './package.json') continue
      for (const kind of ['node16-esm', 'bundler']) {
        const resolved = entry.resolutions[kind]
        expect(resolved?.resolution?.fileName, `${subpath} ${kind} types`).toMatch(/\/dist\/.+\.d\.ts$/)
        expect(resolved?.implementationResolution?.fileName, `${subpath} ${kind} js`).toMatch(
          /\/dist\/.+\.js$/,
        )
      }
    }
  })

  it('verifies a webhook the service signed with the installed verifyWebhook', {
    timeout: STEP_TIMEOUT_MS,
  }, async () => {
    const secret = randomBytes(24).toString('base64url')
    const body = JSON.stringify({ id: 'evt_1', type: 'connection.created', data: { region: 'na' } })
    const now = Math.floor(Date.now() / 1000)
    const header = signWebhook(secret, now, body)
    const { stdout } = await nodeIn(
      consumer,
      'webhook.mjs',
      `import { SIGNATURE_HEADER, verifyWebhook } from 'sp-connect/webhooks'
const { SECRET, HEADER, BODY, NOW } = process.env
console.log(JSON.stringify({
  header: SIGNATURE_HEADER,
  valid: verifyWebhook(SECRET, HEADER, BODY, Number(NOW)),
  tampered: verifyWebhook(SECRET, HEADER, BODY + ' ', Number(NOW)),
  otherSecret: verifyWebhook(SECRET + 'x', HEADER, BODY, Number(NOW)),
  stale: verifyWebhook(SECRET, HEADER, BODY, Number(NOW) + 3600),
}))
`,
      { SECRET: secret, HEADER: header, BODY: body, NOW: String(now) },
    )
    expect(JSON.parse(stdout)).toEqual({
      header: 'sp-connect-signature',
      valid: true,
      tampered: false,
      otherSecret: false,
      stale: false,
    })
  })

  it('type-checks a consumer under moduleResolution nodenext', { timeout: STEP_TIMEOUT_MS }, async () => {
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
        include: ['consumer.ts'],
      }),
    )
    writeFileSync(
      join(consumer, 'consumer.ts'),
      `import { type AccessToken, type AppConfig, createSpConnect, fromEnv, type SpConnect } from 'sp-connect'
import { createSimulator, startSimulatorServer } from 'sp-connect/simulator'
import type { ConnectionRecord, Store } from 'sp-connect/store'
import { verifyWebhook } from 'sp-connect/webhooks'
import { type Connection, createClient, SpConnectApiError } from 'sp-connect/client'

const config: AppConfig = fromEnv({})
const sp: SpConnect = await createSpConnect(config)
const token: AccessToken = await sp.tokens.getAccessToken('conn_1')
const expiresAt: number = token.expiresAt
const rows: ConnectionRecord[] = await sp.connections.list({ tenantId: 't' })
const response: Response = await sp.fetch(new Request('http://localhost/healthz'))
const valid: boolean = verifyWebhook('secret', 't=1,v1=00', '{}', 1)
const store: Store | undefined = undefined
export { createSimulator, expiresAt, response, rows, startSimulatorServer, store, valid }
// @ts-expect-error: tokens are read by connection id, a string
await sp.tokens.getAccessToken(1)

const api = createClient({ baseUrl: 'https://connect.example.com', apiKey: 'k' })
const page: Connection[] = (await api.connections.list({ limit: 10, status: 'active' })).data
const apiToken: string = (await api.connections.getAccessToken('con_1')).access_token
let failedCode: string | undefined
try {
  await api.connections.get('con_1')
} catch (error) {
  if (error instanceof SpConnectApiError) failedCode = error.code
}
export { apiToken, failedCode, page }
// @ts-expect-error: the client's types are the API's: 'us' is not a region
await api.connectSessions.create({ tenant_id: 't', region: 'us' })
`,
    )
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    const result = await sh(process.execPath, [tsc, '-p', 'tsconfig.json'], consumer).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? String(error) }),
    )
    expect(result.stdout).toBe('')
  })
})
