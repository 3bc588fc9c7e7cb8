/**
 * A production-shaped sp-connect deployment on loopback for multi-process tests: real `sp-connect serve` child
 * processes sharing one PostgreSQL database, the Amazon simulator as a real HTTP server, and a small
 * round-robin load balancer in front so a browser sees one origin, as it does behind a production balancer.
 *
 * PostgreSQL comes from SP_CONNECT_TEST_DATABASE_URL (or the local default), where each test file creates a
 * database of its own; a test that must restart PostgreSQL gets a private server instead
 * ({@link startPrivatePostgres}), because other test files use the shared one at the same time.
 *
 * Every child process started here is remembered, so {@link killAllServe} (in an `afterAll`) and, as a last
 * resort, the test process's own exit end them whatever happened.
 */
import { type ChildProcess, execFile, execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, escapeIdentifier } from 'pg'
import { Keyring, parseKeyringSpec } from '../../src/core/crypto/keyring.ts'
import { newId } from '../../src/core/encoding.ts'
import { sealToken } from '../../src/core/tokens/sealed.ts'
import {
  createSimulator,
  generateDevApp,
  type SimulatedApp,
  type Simulator,
  startSimulatorServer,
} from '../../src/simulator/index.ts'
import type { ConnectionRecord, NewConnection, Store } from '../../src/store/store.ts'
import { type CliExit, spawnCli } from './cli.ts'
import { randomSellingPartnerId } from './flows.ts'

const YEAR_MS = 365 * 24 * 60 * 60 * 1000
/** How many times a serve process is started on a fresh port when the one picked was taken meanwhile. */
const PORT_ATTEMPTS = 3
/** /healthz polls before a starting instance counts as failed (100 ms apart: 30 s). */
const HEALTH_ATTEMPTS = 300
const HEALTH_INTERVAL_MS = 100

// ---------------------------------------------------------------------------------------------------------
// Ports

/** A port that was free a moment ago: bound on 127.0.0.1 with port 0, then closed for someone else to take. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

// ---------------------------------------------------------------------------------------------------------
// The shared PostgreSQL server and a database per test file

export const DEFAULT_TEST_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

/** Where the PostgreSQL tests run, and whether they can. */
export interface TestPostgresServer {
  readonly url: string
  readonly available: boolean
}

/** Host, port and database of a URL, never its credentials. */
export function where(url: string): string {
  const u = new URL(url)
  return `${u.hostname}:${u.port || '5432'}${u.pathname}`
}

async function probe(url: string): Promise<string | undefined> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('select 1')
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * The server the PostgreSQL tests use, with store-postgres.test.ts's rule: in CI (CI=true) the variable must be
 * set and the server reachable, or this throws (the file fails loudly); locally an unreachable default server
 * makes the caller skip, with a message naming `what`.
 */
export async function locateTestPostgres(what: string): Promise<TestPostgresServer> {
  const configured = process.env['SP_CONNECT_TEST_DATABASE_URL']
  const inCi = process.env['CI'] === 'true'
  const url = configured || DEFAULT_TEST_SERVER_URL
  if (!configured && inCi) {
    throw new Error(`SP_CONNECT_TEST_DATABASE_URL is not set: CI must run ${what} (.ci/run sets it)`)
  }
  const unreachable = await probe(url)
  if (unreachable !== undefined && (configured || inCi)) {
    throw new Error(`PostgreSQL at ${where(url)} is unreachable: ${unreachable}`)
  }
  if (unreachable !== undefined) {
    console.warn(
      `Skipping ${what}: no PostgreSQL at ${where(url)} (${unreachable}). Set SP_CONNECT_TEST_DATABASE_URL to run them.`,
    )
  }
  return { url, available: unreachable === undefined }
}

/** `base` pointing at another database. */
export function databaseUrl(base: string, database: string): string {
  const u = new URL(base)
  u.pathname = `/${database}`
  return u.toString()
}

/** Runs `work` on a short-lived connection to `url`. */
export async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  client.on('error', () => {})
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => {})
  }
}

/** A database created for one test file. */
export interface TestDatabase {
  readonly name: string
  readonly url: string
  /** Drops it, disconnecting whoever is still connected. */
  drop(): Promise<void>
}

/** Creates `sp_connect_<purpose>_<random>` (UTF8, collation C) on the server at `serverUrl`. */
export async function createTestDatabase(serverUrl: string, purpose: string): Promise<TestDatabase> {
  const name = `sp_connect_${purpose}_${randomBytes(6).toString('hex')}`
  // Identifiers cannot be bound as parameters; this one is ours (letters, digits, _) and quoted anyway.
  await withClient(serverUrl, (client) =>
    client.query(
      `create database ${escapeIdentifier(name)} template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`,
    ),
  )
  return {
    name,
    url: databaseUrl(serverUrl, name),
    drop: async () => {
      await withClient(serverUrl, (client) =>
        client.query(`drop database if exists ${escapeIdentifier(name)} with (force)`),
      )
    },
  }
}

// ---------------------------------------------------------------------------------------------------------
// A private PostgreSQL server, for tests that stop and restart it

/** A PostgreSQL server of our own in a temp folder, listening on 127.0.0.1 only. */
export interface PrivatePostgres {
  readonly port: number
  readonly dir: string
  /** URL of `database` on this server (user postgres, trust authentication). */
  url(database?: string): string
  /** Stops it (`pg_ctl stop -m fast`: sessions are terminated, as in a planned restart). */
  stop(): Promise<void>
  /** Starts it again on the same port and data. */
  start(): Promise<void>
  /** Stops it if it runs and deletes its folder; never throws. */
  destroy(): Promise<void>
}

/** The PostgreSQL programs' folder (the newest /usr/lib/postgresql/N/bin, or pg_config's), if there is one. */
export function postgresBinDir(): string | undefined {
  const configured = process.env['SP_CONNECT_TEST_PG_BINDIR']
  if (configured) return configured
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a))
    if (versions[0] !== undefined) return join(root, versions[0], 'bin')
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim()
    return existsSync(join(dir, 'initdb')) ? dir : undefined
  } catch {
    return undefined
  }
}

/** Why a private server cannot be started here, or undefined when it can. */
export function privatePostgresUnavailable(): string | undefined {
  if (postgresBinDir() === undefined) return 'no PostgreSQL programs (initdb, pg_ctl) found'
  if (process.getuid?.() === 0) {
    // PostgreSQL refuses to run as root: root runs it as the postgres user.
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' })
    } catch {
      return 'running as root, and there is no postgres user to run PostgreSQL as'
    }
    if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser') && !existsSync('/usr/bin/runuser'))
      return 'running as root without runuser'
  }
  return undefined
}

/** Private servers still running; stopped when the test process exits, should an afterAll not have run. */
const privateServers = new Set<{ bin: string; data: string; asPostgres: boolean }>()

function pgCommand(bin: string, program: string, args: readonly string[], asPostgres: boolean) {
  const path = join(bin, program)
  return asPostgres
    ? { file: 'runuser', args: ['-u', 'postgres', '--', path, ...args] }
    : { file: path, args: [...args] }
}

function runPg(
  bin: string,
  program: string,
  args: readonly string[],
  asPostgres: boolean,
  logFile?: string,
): Promise<void> {
  const { file, args: argv } = pgCommand(bin, program, args, asPostgres)
  return new Promise((resolve, reject) => {
    // pg_ctl starts the server with its output in the log file, so it holds none of our pipes open.
    execFile(file, argv, { timeout: 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (!error) return resolve()
      let log = ''
      try {
        if (logFile) log = readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n')
      } catch {}
      reject(new Error(`${program} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}\n${log}`))
    })
  })
}

/**
 * Creates and starts a PostgreSQL server of our own (initdb with trust authentication for user postgres, no
 * fsync: it holds only test data), on a free port of 127.0.0.1 with its socket in its own folder. As root, the
 * programs run as the postgres user through runuser, since PostgreSQL refuses to run as root.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir()
  if (bin === undefined) throw new Error('no PostgreSQL programs found (set SP_CONNECT_TEST_PG_BINDIR)')
  const asPostgres = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'sp-connect-pg-'))
  if (asPostgres) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    chownSync(dir, uid, gid)
  }
  const data = join(dir, 'data')
  const log = join(dir, 'postgres.log')
  const entry = { bin, data, asPostgres }
  let port = 0
  const pgCtl = (args: readonly string[]) => runPg(bin, 'pg_ctl', ['-D', data, ...args], asPostgres, log)
  const start = async () => {
    await pgCtl([
      '-l',
      log,
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`,
      '-w',
      '-t',
      '30',
      'start',
    ])
  }
  const destroy = async () => {
    // Whatever state it is in (a start may have failed half-way): stopping a stopped server only fails.
    if (existsSync(join(data, 'postmaster.pid')))
      await pgCtl(['-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => {})
    privateServers.delete(entry)
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await runPg(
      bin,
      'initdb',
      [
        '-D',
        data,
        '-A',
        'trust',
        '-U',
        'postgres',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ],
      asPostgres,
    )
    privateServers.add(entry)
    // The port was free a moment ago; should someone take it meanwhile, try another.
    for (let attempt = 1; ; attempt++) {
      port = await freePort()
      try {
        await start()
        break
      } catch (error) {
        if (attempt >= PORT_ATTEMPTS) throw error
      }
    }
  } catch (error) {
    await destroy()
    throw error
  }
  return {
    port,
    dir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async stop() {
      await pgCtl(['-m', 'fast', '-w', '-t', '30', 'stop'])
    },
    start,
    destroy,
  }
}

// ---------------------------------------------------------------------------------------------------------
// The load balancer

/** One request the balancer forwarded. */
export interface Forwarded {
  /** Index of the instance that answered. */
  readonly target: number
  readonly method: string
  /** Path only: query strings carry state values and codes. */
  readonly path: string
  readonly status: number
}

export interface LoadBalancer {
  /** `http://127.0.0.1:<port>`, the one origin browsers and callers see. */
  readonly url: string
  /** Every request forwarded so far, in the order they were answered. */
  readonly log: readonly Forwarded[]
  /** Sets instance `index`'s base URL (a replacement takes its predecessor's place in the rotation). */
  setTarget(index: number, url: string): void
  /** Sends the next request (the one after any already pinned) to instance `index`, whatever the rotation says. */
  pinNext(index: number): void
  close(): Promise<void>
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) are the balancer's own business, not forwarded either way. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Raw `[name, value, name, value…]` headers minus hop-by-hop ones; repeated headers (Set-Cookie) stay apart. */
function endToEnd(raw: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? ''
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, raw[i + 1] ?? '')
  }
  return out
}

/**
 * A round-robin HTTP load balancer on 127.0.0.1: each request goes to the next instance (or the pinned one),
 * with its method, path and query, headers (Host and Cookie included) and body; the instance's status and
 * headers (Set-Cookie, Location) come back unchanged, redirects unfollowed. An instance that cannot be reached
 * answers 502, as a real balancer would.
 */
export async function startLoadBalancer(targets: readonly string[] = []): Promise<LoadBalancer> {
  const upstreams = [...targets]
  const pins: number[] = []
  const log: Forwarded[] = []
  let next = 0
  const agent = new Agent({ keepAlive: true })
  const server = createServer((req, res) => {
    const index = pins.shift() ?? next++ % Math.max(upstreams.length, 1)
    const upstream = upstreams[index]
    const method = req.method ?? 'GET'
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const fail = (status: number, message: string) => {
      log.push({ target: index, method, path, status })
      if (res.headersSent) {
        res.destroy()
        return
      }
      res.writeHead(status, { 'content-type': 'text/plain' })
      res.end(message)
    }
    if (upstream === undefined) {
      fail(503, 'no instance')
      return
    }
    const target = new URL(upstream)
    const forward = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method,
        path: req.url ?? '/',
        // node:http takes raw [name, value…] arrays too; the framing headers are recomputed for this hop.
        headers: endToEnd(req.rawHeaders) as unknown as OutgoingHttpHeaders,
        agent,
      },
      (answer: IncomingMessage) => {
        log.push({ target: index, method, path, status: answer.statusCode ?? 502 })
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.rawHeaders))
        answer.pipe(res)
        answer.on('error', () => res.destroy())
      },
    )
    forward.on('error', () => fail(502, 'instance unreachable'))
    req.pipe(forward)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    setTarget(index, url) {
      upstreams[index] = url
    },
    pinNext(index) {
      pins.push(index)
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
        agent.destroy()
      }),
  }
}

// ---------------------------------------------------------------------------------------------------------
// sp-connect serve processes

/** A running `sp-connect serve`. */
export interface ServeProcess {
  readonly url: string
  readonly port: number
  readonly pid: number
  readonly child: ChildProcess
  readonly exited: Promise<CliExit>
  /** Everything it printed (stdout and stderr) so far. */
  output(): string
  running(): boolean
  /** Sends `signal` (SIGTERM by default) unless it has exited, and resolves once it has. */
  kill(signal?: NodeJS.Signals): Promise<CliExit>
}

/** Every serve child still running. */
const liveChildren = new Set<ChildProcess>()

process.once('exit', () => {
  // Last resort when an afterAll never ran: nothing of ours may outlive the test process.
  for (const child of liveChildren) child.kill('SIGKILL')
  for (const pg of privateServers) {
    const { file, args } = pgCommand(
      pg.bin,
      'pg_ctl',
      ['-D', pg.data, '-m', 'immediate', 'stop'],
      pg.asPostgres,
    )
    spawnSync(file, args, { stdio: 'ignore', timeout: 10_000 })
  }
})

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

/** SIGKILLs every serve process started here that still runs, and waits until they are gone. */
export async function killAllServe(): Promise<void> {
  await Promise.all(
    [...liveChildren].map(async (child) => {
      if (isRunning(child)) {
        const gone = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        await gone
      }
      liveChildren.delete(child)
    }),
  )
}

/**
 * Polls `url`/healthz until it answers 200. Returns false when `alive` says the process died first, and throws
 * after `attempts` polls.
 */
export async function waitForHealthy(
  url: string,
  alive: () => boolean = () => true,
  attempts = HEALTH_ATTEMPTS,
): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (!alive()) return false
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) })
      await response.body?.cancel()
      if (response.status === 200) return true
    } catch {
      // Not listening yet, or the database is not back yet.
    }
    await sleep(HEALTH_INTERVAL_MS)
  }
  throw new Error(`${url}/healthz did not answer 200 after ${attempts} tries`)
}

/**
 * Starts `node src/cli/main.ts serve` with exactly `env` (plus PATH/HOME, PORT and SP_CONNECT_HOST=127.0.0.1)
 * on a free port, and resolves once it answers /healthz. Rejects with what it printed if it exits first.
 */
export async function startServe(env: Record<string, string>): Promise<ServeProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const child = spawnCli(['serve'], { env: { ...env, PORT: String(port), SP_CONNECT_HOST: '127.0.0.1' } })
    liveChildren.add(child)
    let output = ''
    const collect = (chunk: string) => {
      output += chunk
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    const exited = new Promise<CliExit>((resolve) => {
      child.once('exit', (code, signal) => {
        liveChildren.delete(child)
        resolve({ code, signal })
      })
    })
    const url = `http://127.0.0.1:${port}`
    let healthy: boolean
    try {
      healthy = await waitForHealthy(url, () => isRunning(child))
    } catch (error) {
      child.kill('SIGKILL')
      await exited
      throw new Error(`sp-connect serve did not become healthy: ${String(error)}\n${output}`)
    }
    if (healthy) {
      return {
        url,
        port,
        pid: child.pid ?? -1,
        child,
        exited,
        output: () => output,
        running: () => isRunning(child),
        async kill(signal = 'SIGTERM') {
          if (isRunning(child)) child.kill(signal)
          return exited
        },
      }
    }
    const exit = await exited
    // Someone took the port between our check and its listen: try another one.
    if (output.includes('EADDRINUSE') && attempt < PORT_ATTEMPTS) continue
    throw new Error(`sp-connect serve exited (${exit.code ?? exit.signal}) before it was healthy:\n${output}`)
  }
}

// ---------------------------------------------------------------------------------------------------------
// The deployment: simulator, app, keys

/** What every instance of one deployment shares, and the simulator playing Amazon for it. */
export interface Deployment {
  readonly simulator: Simulator
  readonly simulatorUrl: string
  readonly app: SimulatedApp
  readonly apiKey: string
  /** The deployment's encryption keyring, for sealing and opening tokens in the test. */
  readonly keyring: Keyring
  /** The production environment of an instance on `databaseUrl` (PORT and host are added per process). */
  env(databaseUrl: string, overrides?: Record<string, string>): Record<string, string>
  close(): Promise<void>
}

/**
 * Starts the simulator with a generated app whose Redirect and Login URIs are at `publicUrl` (the balancer),
 * and makes the keys every instance shares. Instances are configured as in production (the `__Host-`
 * cookie, API keys), with http allowed to loopback only, the background refresher off and warnings only.
 */
export async function startDeployment(publicUrl: string): Promise<Deployment> {
  const app = generateDevApp({ redirectUri: `${publicUrl}/callback`, loginUri: `${publicUrl}/login` })
  const simulator = createSimulator({ apps: [app] })
  const server = await startSimulatorServer(simulator, { port: 0, hostname: '127.0.0.1' })
  const apiKey = randomBytes(24).toString('base64url')
  const keySpec = `k1:${randomBytes(32).toString('base64')}`
  const base: Record<string, string> = {
    SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK: '1',
    SP_CONNECT_PUBLIC_URL: publicUrl,
    SP_CONNECT_APP_ID: app.appId,
    SP_CONNECT_LWA_CLIENT_ID: app.clientId,
    SP_CONNECT_LWA_CLIENT_SECRET: app.clientSecrets[0]?.secret ?? '',
    SP_CONNECT_LWA_TOKEN_URL: `${server.url}/auth/o2/token`,
    SP_CONNECT_CENTRAL_URL_TEMPLATE: `${server.url}/{host}`,
    SP_CONNECT_SPAPI_URL_TEMPLATE: `${server.url}/{host}`,
    SP_CONNECT_ENCRYPTION_KEYS: keySpec,
    SP_CONNECT_API_KEYS: `backend:${apiKey}`,
    SP_CONNECT_REFRESHER: 'off',
    SP_CONNECT_LOG_LEVEL: 'warn',
    // Load tests of token issuing through one balancer address: the per-instance abuse limits are not under test.
    SP_CONNECT_RATE_LIMIT_API_PER_SECOND: '0',
    SP_CONNECT_RATE_LIMIT_BROWSER_PER_SECOND: '0',
  }
  return {
    simulator,
    simulatorUrl: server.url,
    app,
    apiKey,
    keyring: new Keyring(parseKeyringSpec(keySpec)),
    env: (databaseUrl, overrides = {}) => ({ ...base, DATABASE_URL: databaseUrl, ...overrides }),
    async close() {
      await server.close()
      await simulator.close()
    },
  }
}

/** An API answer: status, the `error.code` if any, and the JSON body. */
export interface ApiAnswer {
  readonly status: number
  readonly json: Record<string, unknown>
  readonly code: string | undefined
}

/** Calls the `/v1` API of the instance (or balancer) at `baseUrl` with the deployment's API key. */
export async function callApi(
  deployment: Deployment,
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${deployment.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  })
  const text = await response.text()
  let json: Record<string, unknown> = {}
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {}
  } catch {
    json = { text }
  }
  const error = json['error'] as { code?: unknown } | undefined
  return { status: response.status, json, code: typeof error?.code === 'string' ? error.code : undefined }
}

/** A new connection's row, ready to insert, and the refresh token the simulator issued for it. */
export interface PreparedConnection {
  readonly connection: NewConnection
  readonly refreshToken: string
}

/**
 * An active connection with a live grant at the simulator (self-authorized) and no access token, so the first
 * caller must refresh; not yet inserted, so a test can remember the token before an insert whose outcome may be
 * unknown (a lost connection after the commit).
 */
export function prepareTokenlessConnection(deployment: Deployment, tenantId: string): PreparedConnection {
  const id = newId('con', (size) => new Uint8Array(randomBytes(size)))
  const sellingPartnerId = randomSellingPartnerId()
  const refreshToken = deployment.simulator.selfAuthorize(deployment.app.appId, sellingPartnerId, 'na')
  const now = Date.now()
  return {
    refreshToken,
    connection: {
      id,
      sellingPartnerId,
      region: 'na',
      accountType: 'seller',
      tenantId,
      refreshTokenCiphertext: sealToken(deployment.keyring, id, 'refresh_token', refreshToken),
      accessTokenCiphertext: null,
      accessTokenExpiresAt: null,
      authorizedAt: now,
      reauthorizeBy: now + YEAR_MS,
      now,
    },
  }
}

/** {@link prepareTokenlessConnection}, inserted; returns the row and its refresh token. */
export async function insertTokenlessConnection(
  deployment: Deployment,
  store: Store,
  tenantId: string,
): Promise<{ row: ConnectionRecord; refreshToken: string }> {
  const { connection, refreshToken } = prepareTokenlessConnection(deployment, tenantId)
  const row = await store.insertConnection(connection)
  if (!row) throw new Error('connection not inserted')
  return { row, refreshToken }
}
