import { join } from 'node:path'
import type { Command } from 'commander'
import { Hono } from 'hono'
import { startBackground } from '../../background.ts'
import { defaultDeps } from '../../core/deps.ts'
import { createLogger } from '../../logger.ts'
import { openRuntime } from '../../runtime.ts'
import { createServerApp } from '../../server/app.ts'
import { PrometheusMetrics } from '../../server/metrics.ts'
import { createSimulator } from '../../simulator/index.ts'
import {
  DEFAULT_DEV_PORT,
  devConfig,
  loadOrCreateDevData,
  resolveDataDir,
  SIMULATOR_MOUNT,
  writeDevRuntime,
} from '../dev-data.ts'
import { type FetchHandler, listen } from '../listen.ts'
import { onShutdown } from '../shutdown.ts'

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('run sp-connect locally: SQLite in a data folder and the built-in Amazon simulator')
    .option('--port <port>', 'port to listen on (0 picks a free one)', String(DEFAULT_DEV_PORT))
    .option('--data <dir>', 'data folder for the database, dev credentials and keys', '.sp-connect')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or silent', 'info')
    .action(async (opts: { port: string; data: string; logLevel: string }) => {
      const dir = resolveDataDir(opts.data)
      const data = loadOrCreateDevData(dir)
      const logger = createLogger(opts.logLevel, process.stderr)
      const deps = defaultDeps({ logger, metrics: new PrometheusMetrics() })

      // Listen first so --port 0 works: the URLs in the config need the real port.
      let handler: FetchHandler = () => new Response('starting', { status: 503 })
      const server = await listen((request, env) => handler(request, env), Number(opts.port), '127.0.0.1')
      const publicUrl = `http://localhost:${server.port}`
      const config = devConfig(data, dir, publicUrl, server.port)
      const simulator = createSimulator({
        apps: [
          {
            appId: data.appId,
            clientId: data.lwaClientId,
            clientSecrets: [{ secret: data.lwaClientSecret, expiresAt: null }],
            name: data.appName,
            redirectUris: [config.redirectUri],
            loginUri: `${publicUrl}/login`,
            status: 'published',
          },
        ],
        signingSecret: data.simulatorSigningSecret,
        // Like Amazon's SQS queue forwarded to sp-connect: rotated client secrets arrive as notifications.
        notifications: {
          url: `${publicUrl}/v1/notifications`,
          headers: { authorization: `Bearer ${data.apiKey}` },
        },
        stateFile: join(dir, 'simulator-state.json'),
      })
      const runtime = await openRuntime(config, deps)
      const amazon = `${publicUrl}${SIMULATOR_MOUNT}`
      const root = new Hono()
      root.route(SIMULATOR_MOUNT, simulator.app)
      root.route(
        '/',
        createServerApp(runtime, {
          simulatorLinks: {
            appstore: `${amazon}/sellercentral.amazon.com/apps/appstore/${data.appId}`,
            manageApps: `${amazon}/sellercentral.amazon.com/apps/manage`,
          },
        }),
      )
      handler = (request, env) => root.fetch(request, env)
      const background = startBackground(runtime)
      writeDevRuntime(dir, publicUrl)

      process.stdout.write(
        [
          '',
          `  sp-connect dev is running: ${publicUrl}`,
          '',
          `  Dashboard          ${publicUrl}/`,
          `  Amazon simulator   ${amazon}/  (LWA: ${config.amazon.lwaTokenUrl})`,
          `  Data folder        ${dir}  (SQLite, dev credentials, keys; API key in config.json)`,
          '',
          '  Open the dashboard and click "Connect a seller account". Stop with Ctrl-C.',
          '',
        ].join('\n'),
      )
      onShutdown(async () => {
        await server.close()
        await background.stop()
        await simulator.close()
        await runtime.close()
      })
    })
}
