/**
 * The Amazon simulator in a process of its own, serving HTTP on 127.0.0.1, like the peers' fake LWA: the
 * token endpoint's work then does not share an event loop with the code being measured. Driven over the
 * fork IPC channel by remote-simulator.ts. Exits when its parent goes away.
 */
import {
  createSimulator,
  generateDevApp,
  startSimulatorServer,
  type TokenFaults,
} from '../../src/simulator/index.ts'
import { seededRandom } from './stats.ts'

export type SimulatorRequest =
  | { readonly id: number; readonly op: 'selfAuthorize'; readonly sellingPartnerIds: readonly string[] }
  | { readonly id: number; readonly op: 'setFaults'; readonly faults: TokenFaults }
  | { readonly id: number; readonly op: 'counters' }
  | { readonly id: number; readonly op: 'resetCounters' }
  | { readonly id: number; readonly op: 'close' }

export interface SimulatorReady {
  readonly type: 'ready'
  readonly url: string
  readonly appId: string
  readonly clientId: string
  readonly clientSecret: string
}

export interface SimulatorReply {
  readonly type: 'reply'
  readonly id: number
  readonly value?: unknown
  readonly error?: string
}

/** Options passed as the first argument (JSON). */
export interface SimulatorProcessOptions {
  /** Seed for the fault injection's random draws; Math.random when absent. */
  readonly seed?: number
}

async function main(): Promise<void> {
  const send = process.send?.bind(process)
  if (!send) throw new Error('simulator-process.ts must be started with child_process.fork')
  const options = JSON.parse(process.argv[2] ?? '{}') as SimulatorProcessOptions
  const app = generateDevApp({
    redirectUri: 'http://127.0.0.1:1/callback',
    loginUri: 'http://127.0.0.1:1/login',
  })
  const sim = createSimulator({
    apps: [app],
    ...(options.seed === undefined ? {} : { random: seededRandom(options.seed) }),
  })
  const server = await startSimulatorServer(sim, { port: 0, hostname: '127.0.0.1' })
  let closing = false
  const close = async () => {
    if (closing) return
    closing = true
    await server.close()
    await sim.close()
  }
  process.on('disconnect', () => {
    void close().finally(() => process.exit(0))
  })
  process.on('message', (message: SimulatorRequest) => {
    const reply = (value?: unknown, error?: string) =>
      send({ type: 'reply', id: message.id, value, ...(error ? { error } : {}) } satisfies SimulatorReply)
    try {
      if (message.op === 'selfAuthorize') {
        reply(message.sellingPartnerIds.map((sp) => sim.selfAuthorize(app.appId, sp, 'na')))
      } else if (message.op === 'setFaults') {
        sim.setFaults(message.faults)
        reply()
      } else if (message.op === 'counters') {
        reply(sim.counters())
      } else if (message.op === 'resetCounters') {
        sim.resetCounters()
        reply()
      } else {
        void close().then(() => {
          reply()
          process.disconnect()
        })
      }
    } catch (error) {
      reply(undefined, error instanceof Error ? error.message : String(error))
    }
  })
  send({
    type: 'ready',
    url: server.url,
    appId: app.appId,
    clientId: app.clientId,
    clientSecret: app.clientSecrets[0]?.secret ?? '',
  } satisfies SimulatorReady)
}

await main()
