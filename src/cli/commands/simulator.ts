import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { z } from 'zod'
import { SpConnectError } from '../../domain/errors.ts'
import { createLogger } from '../../logger.ts'
import {
  createSimulator,
  generateDevApp,
  type SimulatedApp,
  startSimulatorServer,
} from '../../simulator/index.ts'
import { type ProxyEvent, startSimulatorTlsServer } from '../../simulator/proxy.ts'
import { prepareSimulatorTls, type SimulatorTls } from '../../simulator/tls.ts'
import { resolveDataDir } from '../dev-data.ts'
import { printOutput } from '../output.ts'
import { onShutdown } from '../shutdown.ts'

const appsFileSchema = z.array(
  z.object({
    appId: z.string(),
    clientId: z.string(),
    clientSecrets: z.array(z.object({ secret: z.string(), expiresAt: z.number().nullable() })).min(1),
    name: z.string(),
    redirectUris: z.array(z.string()).min(1),
    loginUri: z.string(),
    status: z.enum(['draft', 'published']),
    hybrid: z.boolean().optional(),
  }),
)

export function registerSimulatorCommand(program: Command): void {
  program
    .command('simulator')
    .description(
      'run the Amazon simulator alone (consent pages, LWA token endpoint, SP-API) for your own code',
    )
    .option('--port <port>', 'port to listen on', '9000')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--apps <file>', 'JSON file with the app registrations to simulate')
    .option('--redirect-uri <url>', 'redirect URI of the generated app', 'http://localhost:3000/callback')
    .option('--login-uri <url>', 'login URI of the generated app', 'http://localhost:3000/login')
    .option('--draft', 'register the generated app as Draft (version=beta required)')
    .option('--state <file>', 'file that keeps grants and revocations across restarts')
    .option('--json', 'print the endpoints and app credentials as one JSON document once listening')
    .option(
      '--tls',
      'serve HTTPS with a local CA kept in the data folder, and act as HTTPS_PROXY for Amazon hosts on the same port',
    )
    .option('--data <dir>', 'data folder for the local CA (with --tls)', '.sp-connect')
    .option(
      '--notify-url <url>',
      'POST SP-API notifications (rotated client secrets) here, as Amazon would put them on your SQS queue',
    )
    .action(
      async (opts: {
        port: string
        host: string
        apps?: string
        redirectUri: string
        loginUri: string
        draft?: boolean
        state?: string
        json?: boolean
        tls?: boolean
        data: string
        notifyUrl?: string
      }) => {
        const apps: SimulatedApp[] = opts.apps
          ? appsFileSchema.parse(JSON.parse(readFileSync(opts.apps, 'utf8'))).map(withoutUndefined)
          : [
              generateDevApp({
                redirectUri: opts.redirectUri,
                loginUri: opts.loginUri,
                status: opts.draft ? 'draft' : 'published',
              }),
            ]
        const notifyUrl = opts.notifyUrl === undefined ? undefined : notificationUrl(opts.notifyUrl)
        const simulator = createSimulator({
          apps,
          ...(opts.state ? { stateFile: opts.state } : {}),
          ...(notifyUrl === undefined ? {} : { notifications: { url: notifyUrl } }),
        })
        let tls: SimulatorTls | undefined
        if (opts.tls) tls = await prepareSimulatorTls(resolveDataDir(opts.data))
        const listenOn = { port: Number(opts.port), hostname: opts.host }
        const server = tls
          ? await startSimulatorTlsServer(simulator.app.fetch, {
              ...listenOn,
              tls,
              // Refused proxy targets are client input: pino escapes them; keys never reach this logger.
              log: proxyLogger(),
            })
          : await startSimulatorServer(simulator, listenOn)
        const lines = [
          `Amazon simulator listening on ${server.url}`,
          `  LWA token endpoint  ${server.url}/auth/o2/token`,
        ]
        if (tls) {
          const proxy = server.url.replace(/^https:/, 'http:')
          lines.push(`  CA certificate      ${tls.caCertPath}${tls.createdCa ? ' (new)' : ''}`)
          lines.push(`  Proxy for Amazon    HTTPS_PROXY=${proxy} NODE_EXTRA_CA_CERTS=${tls.caCertPath}`)
          lines.push('                      (Node 24 clients on node:https also need NODE_USE_ENV_PROXY=1)')
        }
        if (notifyUrl !== undefined) lines.push(`  Notifications to    ${notifyUrl}`)
        lines.push(`  Consent page        ${server.url}/sellercentral.amazon.com/apps/authorize/consent`)
        lines.push(`  SP-API (NA)         ${server.url}/sellingpartnerapi-na.amazon.com`)
        for (const app of apps) {
          // Simulator credentials are made up for local use; printing them is how you configure your code.
          lines.push(`  App "${app.name}": application_id=${app.appId} client_id=${app.clientId}`)
          lines.push(`    client_secret=${app.clientSecrets[0]?.secret ?? ''} status=${app.status}`)
        }
        printOutput(
          opts.json,
          {
            url: server.url,
            lwa_token_url: `${server.url}/auth/o2/token`,
            ...(tls
              ? { ca_cert_path: tls.caCertPath, https_proxy: server.url.replace(/^https:/, 'http:') }
              : {}),
            ...(notifyUrl === undefined ? {} : { notify_url: notifyUrl }),
            apps: apps.map((app) => ({
              name: app.name,
              application_id: app.appId,
              client_id: app.clientId,
              client_secret: app.clientSecrets[0]?.secret ?? null,
              status: app.status,
            })),
          },
          () => process.stdout.write(`${lines.join('\n')}\n`),
        )
        onShutdown(async () => {
          await server.close()
          await simulator.close()
        })
      },
    )
}

/** An absolute http(s) URL without credentials (the simulator is local; plain http is fine). */
function notificationUrl(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new SpConnectError('invalid_request', { detail: '--notify-url must be an absolute http(s) URL' })
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password)
    throw new SpConnectError('invalid_request', {
      detail: '--notify-url must be an http(s) URL without credentials',
    })
  return url.href
}

function proxyLogger(): (event: ProxyEvent) => void {
  const logger = createLogger('info', process.stderr)
  const messages: Record<ProxyEvent['event'], string> = {
    proxy_refused: 'simulator proxy refused a target that is not a simulated Amazon host on port 443',
    proxy_tunnel_limit: 'simulator proxy refused a tunnel: too many open',
    tls_handshake_failed: 'simulator TLS handshake failed (does the client trust the CA?)',
  }
  return (event) => logger.warn(event, messages[event.event])
}

function withoutUndefined(app: z.infer<typeof appsFileSchema>[number]): SimulatedApp {
  const { hybrid, ...rest } = app
  return hybrid === undefined ? rest : { ...rest, hybrid }
}
