/**
 * Runs the benchmarks: `npm run bench` runs them all, `npm run bench -- stampede` (or
 * `./node_modules/.bin/node bench/run.ts stampede lwa-errors`) runs some. Each scenario runs in a fresh child
 * process with `--expose-gc`, bounded by a time limit; its result is written to bench/results/<name>.json and
 * docs/benchmarks.md is rendered again from every result file present.
 */
import { fork } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { machineBusySeconds } from './lib/cpu.ts'
import { machineInfo, sourceInfo } from './lib/machine.ts'
import { type BenchResultFile, RESULTS_DIR, writeReport } from './lib/report.ts'
import type { ScenarioMessage } from './lib/scenario-main.ts'
import { isScenarioName, SCENARIOS, type ScenarioName } from './scenarios/index.ts'

/** No scenario may take longer than this; the whole run stays within a few minutes on 2 cores. */
const SCENARIO_TIME_LIMIT_MS = 180_000
const MAIN = fileURLToPath(new URL('./lib/scenario-main.ts', import.meta.url))

interface ScenarioOutcome {
  readonly result: unknown
  readonly cpuSeconds: number
}

function runScenario(name: ScenarioName): Promise<ScenarioOutcome> {
  return new Promise((resolve, reject) => {
    const child = fork(MAIN, [name], {
      execArgv: [...process.execArgv, '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    let settled = false
    const timer = setTimeout(() => {
      // The scenario's own children see their IPC channel close and exit with it.
      child.kill('SIGKILL')
      finish({ error: new Error(`${name} took longer than ${SCENARIO_TIME_LIMIT_MS / 1000} s`) })
    }, SCENARIO_TIME_LIMIT_MS)
    const finish = (outcome: { error: Error } | { value: ScenarioOutcome }) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if ('error' in outcome) reject(outcome.error)
      else resolve(outcome.value)
    }
    child.on('message', (message: ScenarioMessage) => {
      if (message.type === 'result')
        finish({ value: { result: message.result, cpuSeconds: message.cpuSeconds } })
      else finish({ error: new Error(`${name} failed:\n${message.message}`) })
    })
    child.on('exit', (code, signal) => {
      finish({ error: new Error(`${name} exited (${signal ?? code}) without a result`) })
    })
  })
}

const round1 = (n: number) => Math.round(n * 10) / 10

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const unknown = args.filter((a) => !isScenarioName(a))
  if (unknown.length > 0) {
    console.error(`Unknown benchmark(s): ${unknown.join(', ')}. Known: ${Object.keys(SCENARIOS).join(', ')}`)
    process.exit(2)
  }
  const names = args.length > 0 ? args.filter(isScenarioName) : (Object.keys(SCENARIOS) as ScenarioName[])
  mkdirSync(RESULTS_DIR, { recursive: true })
  const machine = machineInfo()
  console.log(
    `sp-connect benchmarks on ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}`,
  )
  let failed = 0
  const runStart = Date.now()
  for (const name of names) {
    console.log(`\n▶ ${name}: ${SCENARIOS[name].title}`)
    const started = Date.now()
    const busyBefore = machineBusySeconds()
    const source = sourceInfo()
    try {
      const { result, cpuSeconds } = await runScenario(name)
      const wallSeconds = (Date.now() - started) / 1000
      const otherCpuSeconds = Math.max(0, machineBusySeconds() - busyBefore - cpuSeconds)
      const file: BenchResultFile = {
        scenario: name,
        title: SCENARIOS[name].title,
        date: new Date(started).toISOString(),
        durationSeconds: round1(wallSeconds),
        machine,
        ...(source ? { source } : {}),
        cpu: {
          benchSeconds: round1(cpuSeconds),
          otherSeconds: round1(otherCpuSeconds),
          otherShare: Math.round((otherCpuSeconds / (wallSeconds * machine.nproc)) * 100) / 100,
        },
        result,
      }
      writeFileSync(new URL(`${name}.json`, RESULTS_DIR), `${JSON.stringify(file, null, 2)}\n`)
      console.log(`  done in ${file.durationSeconds} s → bench/results/${name}.json`)
      console.log(JSON.stringify(result, null, 2))
    } catch (error) {
      failed++
      console.error(`  ✗ ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  writeReport()
  console.log(`\nAll done in ${Math.round((Date.now() - runStart) / 1000)} s; docs/benchmarks.md rendered.`)
  if (failed > 0) process.exitCode = 1
}

await main()
