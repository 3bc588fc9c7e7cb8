/** The parent's handle on a simulator running in its own process (simulator-process.ts). */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { TokenEndpointCounters, TokenFaults } from '../../src/simulator/index.ts'
import type { LwaTarget } from './harness.ts'
import type {
  SimulatorProcessOptions,
  SimulatorReady,
  SimulatorReply,
  SimulatorRequest,
} from './simulator-process.ts'

const SCRIPT = fileURLToPath(new URL('./simulator-process.ts', import.meta.url))

type Op = SimulatorRequest extends infer R ? (R extends { op: infer O } ? O : never) : never
type Payload<O extends Op> = Omit<Extract<SimulatorRequest, { op: O }>, 'id' | 'op'>

export class RemoteSimulator {
  readonly url: string
  readonly tokenUrl: string
  readonly appId: string
  readonly clientId: string
  readonly clientSecret: string
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  #nextId = 1

  private constructor(child: ChildProcess, ready: SimulatorReady) {
    this.#child = child
    this.url = ready.url
    this.tokenUrl = `${ready.url}/auth/o2/token`
    this.appId = ready.appId
    this.clientId = ready.clientId
    this.clientSecret = ready.clientSecret
    child.on('message', (message: SimulatorReply) => {
      if (message.type !== 'reply') return
      const pending = this.#pending.get(message.id)
      this.#pending.delete(message.id)
      if (message.error !== undefined) pending?.reject(new Error(message.error))
      else pending?.resolve(message.value)
    })
    child.on('exit', () => {
      for (const { reject } of this.#pending.values()) reject(new Error('simulator process exited'))
      this.#pending.clear()
    })
  }

  static async start(options: SimulatorProcessOptions = {}): Promise<RemoteSimulator> {
    const child = fork(SCRIPT, [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const ready = await new Promise<SimulatorReady>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('simulator process did not start in 15 s')), 15_000)
      child.once('message', (message: SimulatorReady) => {
        clearTimeout(timer)
        resolve(message)
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`simulator process exited with ${code}`))
      })
    }).catch((error: unknown) => {
      child.kill()
      throw error
    })
    return new RemoteSimulator(child, ready)
  }

  /** What an sp-connect configuration needs to point at this simulator. */
  get target(): LwaTarget {
    return {
      tokenUrl: this.tokenUrl,
      simulatorUrl: this.url,
      appId: this.appId,
      clientId: this.clientId,
      clientSecret: this.clientSecret,
    }
  }

  #call<O extends Op>(op: O, payload: Payload<O>): Promise<unknown> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.#child.send({ id, op, ...payload })
    })
  }

  /** Self-authorizes each selling partner (region na) and returns their refresh tokens, in order. */
  async selfAuthorize(sellingPartnerIds: readonly string[]): Promise<string[]> {
    return (await this.#call('selfAuthorize', { sellingPartnerIds })) as string[]
  }

  async setFaults(faults: TokenFaults): Promise<void> {
    await this.#call('setFaults', { faults })
  }

  async counters(): Promise<TokenEndpointCounters> {
    return (await this.#call('counters', {})) as TokenEndpointCounters
  }

  async resetCounters(): Promise<void> {
    await this.#call('resetCounters', {})
  }

  /** Stops the server and waits for the process to exit (kills it if it does not within 5 s). */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()))
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000)
    try {
      await this.#call('close', {})
    } catch {
      // It may exit before replying; the exit is what we wait for.
    }
    await exited
    clearTimeout(timer)
  }
}
