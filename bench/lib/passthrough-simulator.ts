/**
 * The simulator for bench/scenarios/spapi-passthrough.ts, in a process of its own: one listener on 127.0.0.1
 * that speaks plain HTTP (sp-connect and the bare proxy reach SP-API as `http://127.0.0.1:<port>/<host>/…`)
 * and HTTPS with a certificate from a CA generated in a temp folder (amazon-sp-api, which only speaks HTTPS to
 * `sellingpartnerapi-na.amazon.com`), as `sp-connect simulator --tls` does. Driven over the fork IPC channel;
 * exits when its parent goes away.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createSimulator,
  generateDevApp,
  prepareSimulatorTls,
  startSimulatorTlsServer,
} from '../../src/simulator/index.ts'

export type PassthroughSimulatorRequest =
  | {
      readonly op: 'start'
      readonly sellingPartnerIds: readonly string[]
      /** Usage plan overrides, as `POST /_control/usage-plans` sets them. */
      readonly plans: readonly { readonly operation: string; readonly rate: number; readonly burst: number }[]
    }
  | { readonly op: 'counters' }
  | { readonly op: 'close' }

export type PassthroughSimulatorReply =
  | {
      readonly type: 'ready'
      readonly url: string
      readonly caPem: string
      readonly appId: string
      readonly clientId: string
      readonly clientSecret: string
      /** One per selling partner, in order. */
      readonly refreshTokens: readonly string[]
    }
  | { readonly type: 'counters'; readonly throttledByOperation: Record<string, number> }
  | { readonly type: 'closed' }
  | { readonly type: 'error'; readonly message: string }

const send = (reply: PassthroughSimulatorReply) => process.send?.(reply)
const dataDir = mkdtempSync(join(tmpdir(), 'sp-connect-bench-passthrough-sim-'))
const app = generateDevApp({
  redirectUri: 'http://127.0.0.1:1/callback',
  loginUri: 'http://127.0.0.1:1/login',
})
const sim = createSimulator({ apps: [app] })
let server: { close(): Promise<void> } | undefined

async function close(): Promise<void> {
  await server?.close().catch(() => {})
  await sim.close()
  rmSync(dataDir, { recursive: true, force: true })
}

process.on('disconnect', () => {
  void close().finally(() => process.exit(0))
})
process.on('message', (message: PassthroughSimulatorRequest) => {
  void (async () => {
    try {
      if (message.op === 'start') {
        const tls = await prepareSimulatorTls(dataDir)
        const started = await startSimulatorTlsServer(sim.app.fetch, {
          port: 0,
          tls,
          // The 64-connection loads and amazon-sp-api's keep-alive socket, with room to spare.
          maxConnections: 1024,
        })
        server = started
        for (const { operation, rate, burst } of message.plans) sim.setUsagePlan(operation, { rate, burst })
        send({
          type: 'ready',
          // The listener tells TLS from plain HTTP by the first byte; sp-connect and the bare proxy speak HTTP.
          url: started.url.replace(/^https:/, 'http:'),
          caPem: tls.caCertPem,
          appId: app.appId,
          clientId: app.clientId,
          clientSecret: app.clientSecrets[0]?.secret ?? '',
          refreshTokens: message.sellingPartnerIds.map((sp) => sim.selfAuthorize(app.appId, sp, 'na')),
        })
      } else if (message.op === 'counters') {
        send({ type: 'counters', throttledByOperation: sim.spapiCounters().throttledByOperation })
      } else {
        await close()
        send({ type: 'closed' })
        process.disconnect()
      }
    } catch (error) {
      send({ type: 'error', message: error instanceof Error ? error.message : String(error) })
    }
  })()
})
