/**
 * Runs one scenario in this (fresh) process and sends its result to the parent, bench/run.ts. A fresh process
 * per scenario keeps heap figures and JIT state from leaking between scenarios, as in the peers' bench.
 */
import { isScenarioName, SCENARIOS } from '../scenarios/index.ts'
import { ownCpuSeconds } from './cpu.ts'

export type ScenarioMessage =
  | {
      readonly type: 'result'
      readonly result: unknown
      /** CPU-seconds this scenario used, its child processes included. */
      readonly cpuSeconds: number
    }
  | { readonly type: 'error'; readonly message: string }

const name = process.argv[2] ?? ''
const send = (message: ScenarioMessage) =>
  new Promise<void>((resolve) => {
    if (process.send) process.send(message, () => resolve())
    else {
      console.log(JSON.stringify(message, null, 2))
      resolve()
    }
  })

try {
  if (!isScenarioName(name)) throw new Error(`unknown scenario: ${name}`)
  const scenario = await SCENARIOS[name].load()
  const result = await scenario.run()
  await send({ type: 'result', result, cpuSeconds: ownCpuSeconds() })
} catch (error) {
  await send({
    type: 'error',
    message: error instanceof Error ? (error.stack ?? error.message) : String(error),
  })
  process.exitCode = 1
}
// Everything the scenario opened is closed by now; exiting here bounds the run even if something lingers.
process.exit()
