/**
 * `sp-connect dev`: the service, SQLite in a data folder and the Amazon simulator on one loopback port.
 *
 * Flags for what an integrating app builds: `--webhook-url` (repeatable; signed with `webhookSecret`, made once
 * and kept in the folder's config.json), `--return-origin` (repeatable; allowed `return_to` origins), `--draft`
 * (the simulated app is Draft, so flows send version=beta) and `--host`. The dev console signs nobody in, so a
 * non-loopback `--host` is refused unless `--allow-remote` is given as well, and then a warning is printed.
 */
import { isIP } from 'node:net'
import { join } from 'node:path'
import type { Command } from 'commander'
import { Hono } from 'hono'
import { startBackground } from '../../background.ts'
import { defaultDeps } from '../../core/deps.ts'
import { SpConnectError } from '../../domain/errors.ts'
import { createLogger } from '../../logger.ts'
import { openRuntime } from '../../runtime.ts'
import { createServerApp } from '../../server/app.ts'
import { PrometheusMetrics } from '../../server/metrics.ts'
import { createSimulator } from '../../simulator/index.ts'
import {
  DEFAULT_DEV_PORT,
  devConfig,
  ensureDevWebhookSecret,
  loadOrCreateDevData,
  resolveDataDir,
  SIMULATOR_MOUNT,
  writeDevRuntime,
} from '../dev-data.ts'
import { type FetchHandler, listen } from '../listen.ts'
import { onShutdown } from '../shutdown.ts'

interface DevCommandOptions {
  port: string
  data: string
  logLevel: string
  host: string
  allowRemote?: boolean
  webhookUrl: string[]
  returnOrigin: string[]
  draft?: boolean
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can reach a dev server listening there. */
function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '')
  if (bare === 'localhost' || bare === '::1') return true
  return isIP(bare) === 4 && bare.startsWith('127.')
}

/** The URL the dev server tells browsers: localhost for loopback and wildcard addresses, else the address. */
function devPublicUrl(host: string, port: number): string {
  const bare = host.replace(/^\[|\]$/g, '')
  if (bare === '127.0.0.1' || bare === 'localhost' || bare === '0.0.0.0' || bare === '::')
    return `http://localhost:${port}`
  return `http://${isIP(bare) === 6 ? `[${bare}]` : bare}:${port}`
}

/** http(s) URLs without credentials; dev allows plain http anywhere (the receiver is the developer's own). */
function devUrl(value: string, flag: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new SpConnectError('invalid_request', { detail: `${flag} must be an absolute http(s) URL` })
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password)
    throw new SpConnectError('invalid_request', {
      detail: `${flag} must be an http(s) URL without credentials`,
    })
  return url
}

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('run sp-connect locally: SQLite in a data folder and the built-in Amazon simulator')
    .option('--port <port>', 'port to listen on (0 picks a free one)', String(DEFAULT_DEV_PORT))
    .option('--data <dir>', 'data folder for the database, dev credentials and keys', '.sp-connect')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or silent', 'info')
    .option(
      '--host <host>',
      'address to listen on; anything but loopback also needs --allow-remote (the dev console has no sign-in)',
      '127.0.0.1',
    )
    .option('--allow-remote', 'allow a non-loopback --host: anyone who reaches it controls this dev server')
    .option(
      '--webhook-url <url>',
      'deliver signed webhooks to this URL, repeatable (secret: webhookSecret in the data folder config.json)',
      collect,
      [],
    )
    .option('--return-origin <origin>', 'allow return_to URLs on this origin, repeatable', collect, [])
    .option('--draft', 'register the simulated app as a Draft app: authorization flows send version=beta')
    .action(async (opts: DevCommandOptions) => {
      const host = opts.host.trim()
      if (host === '') throw new SpConnectError('invalid_request', { detail: '--host must not be empty' })
      const remote = !isLoopbackHost(host)
      // The dev console signs nobody in and the simulator hands out tokens: on a shared network that is an
      // open door, so listening beyond this machine takes a second, explicit flag.
      if (remote && !opts.allowRemote) {
        throw new SpConnectError('invalid_request', {
          detail: `--host ${host} is not a loopback address; the dev console needs no sign-in, so add --allow-remote if everyone who can reach it may use it`,
        })
      }
      // Before anything else, so the warning is the first thing printed.
      if (remote)
        process.stderr.write(
          [
            '',
            `  WARNING: listening on ${host}, beyond this machine. The dev console has NO sign-in and the`,
            '  simulator hands out tokens: anyone who can reach this address can connect and disconnect',
            '  accounts and read their tokens. Use it only on a network you trust.',
            '',
          ].join('\n'),
        )
      const webhookUrls = opts.webhookUrl.map((u) => devUrl(u, '--webhook-url').href)
      const returnOrigins = opts.returnOrigin.map((u) => devUrl(u, '--return-origin').origin)
      const dir = resolveDataDir(opts.data)
      const data = loadOrCreateDevData(dir)
      const webhookSecret = webhookUrls.length > 0 ? ensureDevWebhookSecret(dir) : null
      const logger = createLogger(opts.logLevel, process.stderr)
      const deps = defaultDeps({ logger, metrics: new PrometheusMetrics() })

      // Listen first so --port 0 works: the URLs in the config need the real port.
      let handler: FetchHandler = () => new Response('starting', { status: 503 })
      const server = await listen((request, env) => handler(request, env), Number(opts.port), host)
      const publicUrl = devPublicUrl(host, server.port)
      const config = devConfig(data, dir, publicUrl, server.port, {
        ...(webhookSecret === null ? {} : { webhooks: { urls: webhookUrls, secret: webhookSecret } }),
        returnOrigins,
        draftApp: opts.draft === true,
        host,
      })
      const simulator = createSimulator({
        apps: [
          {
            appId: data.appId,
            clientId: data.lwaClientId,
            clientSecrets: [{ secret: data.lwaClientSecret, expiresAt: null }],
            name: data.appName,
            redirectUris: [config.redirectUri],
            loginUri: `${publicUrl}/login`,
            status: opts.draft ? 'draft' : 'published',
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

      const extra: string[] = []
      if (webhookUrls.length > 0)
        extra.push(
          `  Webhooks           ${webhookUrls.join(', ')}`,
          `                     signed with webhookSecret from ${join(dir, 'config.json')}; check a capture with`,
          '                     sp-connect webhooks verify --secret-env VAR --signature "<sp-connect-signature>" < body',
        )
      if (returnOrigins.length > 0) extra.push(`  Return origins     ${returnOrigins.join(', ')}`)
      if (opts.draft) extra.push('  App status         Draft (authorization flows send version=beta)')
      process.stdout.write(
        [
          '',
          `  sp-connect dev is running: ${publicUrl}`,
          '',
          `  Dashboard          ${publicUrl}/`,
          `  Amazon simulator   ${amazon}/  (LWA: ${config.amazon.lwaTokenUrl})`,
          `  Data folder        ${dir}  (SQLite, dev credentials, keys; API key in config.json)`,
          ...extra,
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
