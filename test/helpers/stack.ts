/**
 * A whole sp-connect deployment on loopback for integration tests: the Amazon simulator and the service as
 * real HTTP servers, a real SQLite file in a temp folder, production configuration (the `__Host-` cookie,
 * API keys) with http allowed to loopback only, a controllable clock, and a logger that keeps every line so
 * tests can prove no secret was logged.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type FetchHandler, listen } from '../../src/cli/listen.ts'
import { loadConfigFromEnv } from '../../src/config.ts'
import { defaultDeps, type Logger } from '../../src/core/deps.ts'
import { openRuntime, type Runtime } from '../../src/runtime.ts'
import { createServerApp } from '../../src/server/app.ts'
import { PrometheusMetrics } from '../../src/server/metrics.ts'
import {
  createSimulator,
  generateDevApp,
  type SimulatedApp,
  type Simulator,
  startSimulatorServer,
} from '../../src/simulator/index.ts'

/** Where the stack's service hands Login-URI requests (the app's sign-in page, played by the tests). */
export const APP_SIGNIN_URL = 'http://127.0.0.1:1/app/sign-in'

export interface Clock {
  now(): number
  advance(ms: number): void
}

export function controllableClock(): Clock {
  let offset = 0
  return {
    now: () => Date.now() + offset,
    advance: (ms) => {
      offset += ms
    },
  }
}

export class MemoryLogger implements Logger {
  readonly lines: string[] = []
  debug(obj: object, msg?: string): void {
    this.lines.push(JSON.stringify({ level: 'debug', ...obj, msg }))
  }
  info(obj: object, msg?: string): void {
    this.lines.push(JSON.stringify({ level: 'info', ...obj, msg }))
  }
  warn(obj: object, msg?: string): void {
    this.lines.push(JSON.stringify({ level: 'warn', ...obj, msg }))
  }
  error(obj: object, msg?: string): void {
    this.lines.push(
      JSON.stringify({ level: 'error', ...obj, msg, err: String((obj as { err?: unknown }).err ?? '') }),
    )
  }
  text(): string {
    return this.lines.join('\n')
  }
}

export interface Stack {
  readonly serviceUrl: string
  readonly simulatorUrl: string
  readonly simulator: Simulator
  readonly app: SimulatedApp
  readonly runtime: Runtime
  readonly apiKey: string
  readonly dir: string
  readonly dbPath: string
  readonly env: Record<string, string>
  readonly clock: Clock
  readonly logger: MemoryLogger
  /** Calls the service API with the API key. */
  api(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }>
  close(): Promise<void>
}

export interface StackOptions {
  readonly draft?: boolean
  readonly hybrid?: boolean
  /** Override the LWA token URL (e.g. to a server that answers garbage). */
  readonly lwaTokenUrl?: string
  readonly env?: Record<string, string>
  /**
   * Deliver the simulator's SP-API notifications (client-secret rotation) to the service's
   * `POST /v1/notifications` with the API key, as an SQS forwarder would.
   */
  readonly notifications?: boolean
  /** Serve under this path prefix (SP_CONNECT_BASE_PATH); `serviceUrl` then ends with it. */
  readonly basePath?: string
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'sp-connect-it-'))
  const clock = controllableClock()
  const logger = new MemoryLogger()
  let handler: FetchHandler = () => new Response('starting', { status: 503 })
  const service = await listen((request, env) => handler(request, env), 0, '127.0.0.1')
  const origin = `http://127.0.0.1:${service.port}`
  const serviceUrl = `${origin}${options.basePath ?? ''}`

  const app = generateDevApp({
    redirectUri: `${serviceUrl}/callback`,
    loginUri: `${serviceUrl}/login`,
    status: options.draft ? 'draft' : 'published',
    ...(options.hybrid ? { hybrid: true } : {}),
  })
  const apiKey = randomBytes(24).toString('base64url')
  const simulator = createSimulator({
    apps: [app],
    now: clock.now,
    ...(options.notifications
      ? {
          notifications: {
            url: `${serviceUrl}/v1/notifications`,
            headers: { authorization: `Bearer ${apiKey}` },
          },
        }
      : {}),
  })
  const simServer = await startSimulatorServer(simulator, { port: 0, hostname: '127.0.0.1' })

  const dbPath = join(dir, 'sp-connect.db')
  const env: Record<string, string> = {
    SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK: '1',
    SP_CONNECT_PUBLIC_URL: origin,
    ...(options.basePath ? { SP_CONNECT_BASE_PATH: options.basePath } : {}),
    SP_CONNECT_APP_ID: app.appId,
    SP_CONNECT_APP_STATUS: options.draft ? 'draft' : 'published',
    SP_CONNECT_LWA_CLIENT_ID: app.clientId,
    SP_CONNECT_LWA_CLIENT_SECRET: app.clientSecrets[0]?.secret ?? '',
    SP_CONNECT_LWA_TOKEN_URL: options.lwaTokenUrl ?? `${simServer.url}/auth/o2/token`,
    SP_CONNECT_CENTRAL_URL_TEMPLATE: `${simServer.url}/{host}`,
    SP_CONNECT_SPAPI_URL_TEMPLATE: `${simServer.url}/{host}`,
    DATABASE_URL: dbPath,
    SP_CONNECT_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    SP_CONNECT_API_KEYS: `backend:${apiKey}`,
    SP_CONNECT_RETURN_ORIGINS: 'http://127.0.0.1:1',
    // The app's sign-in page: tests play the app (read sp_connect_login, approve through the API), so nothing
    // ever has to answer at this address.
    SP_CONNECT_APP_SIGNIN_URL: APP_SIGNIN_URL,
    // Tests drive many flows from one loopback address in quick succession: limits far above what they do
    // (the abuse-limit tests set their own, small ones).
    SP_CONNECT_RATE_LIMIT_BROWSER_PER_SECOND: '1000',
    SP_CONNECT_RATE_LIMIT_BROWSER_BURST: '10000',
    SP_CONNECT_RATE_LIMIT_API_PER_SECOND: '1000',
    SP_CONNECT_RATE_LIMIT_API_BURST: '10000',
    SP_CONNECT_RATE_LIMIT_AUTH_FAILURES: '1000',
    ...options.env,
  }
  const config = loadConfigFromEnv(env)
  // As serve does; without process metrics (each collector adds timers, and many stacks share a process).
  const deps = defaultDeps({
    logger,
    now: clock.now,
    metrics: new PrometheusMetrics({ defaultMetrics: false }),
  })
  const runtime = await openRuntime(config, deps)
  const server = createServerApp(runtime)
  handler = (request, env) => server.fetch(request, env)

  return {
    serviceUrl,
    simulatorUrl: simServer.url,
    simulator,
    app,
    runtime,
    apiKey,
    dir,
    dbPath,
    env,
    clock,
    logger,
    async api(method, path, body) {
      const response = await fetch(`${serviceUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
      })
      const text = await response.text()
      return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
    },
    async close() {
      await service.close()
      await simServer.close()
      await simulator.close()
      await runtime.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
