import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { z } from 'zod'
import {
  createSimulator,
  generateDevApp,
  type SimulatedApp,
  startSimulatorServer,
} from '../../simulator/index.ts'
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
        const simulator = createSimulator({ apps, ...(opts.state ? { stateFile: opts.state } : {}) })
        const server = await startSimulatorServer(simulator, { port: Number(opts.port), hostname: opts.host })
        const lines = [
          `Amazon simulator listening on ${server.url}`,
          `  LWA token endpoint  ${server.url}/auth/o2/token`,
        ]
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

function withoutUndefined(app: z.infer<typeof appsFileSchema>[number]): SimulatedApp {
  const { hybrid, ...rest } = app
  return hybrid === undefined ? rest : { ...rest, hybrid }
}
