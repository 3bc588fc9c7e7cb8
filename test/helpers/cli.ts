/**
 * The sp-connect CLI as a child process, as a user runs it: `node src/cli/main.ts …` from the repository root,
 * by default with a clean environment so that nothing from the test runner's environment (DATABASE_URL,
 * SP_CONNECT_*) can configure it.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import type { Readable } from 'node:stream'

/** The repository root, from this file's own place (test/helpers/). */
const REPO_ROOT = join(import.meta.dirname, '..', '..')
const CLI_TIMEOUT_MS = 30_000
const DEV_STARTUP_TIMEOUT_MS = 30_000
const RUNNING_LINE = /sp-connect dev is running: (http:\/\/localhost:(\d+))\n/

/** How a CLI process exited. */
export interface CliExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** How a CLI process exited, and everything it printed. */
export interface CliResult extends CliExit {
  readonly stdout: string
  readonly stderr: string
}

/** How to start a CLI process. */
export interface SpawnCliOptions {
  /** Variables for the process: on top of PATH/HOME only, or of the runner's whole environment (`inheritEnv`). */
  readonly env?: Record<string, string>
  /** Start from the test runner's environment instead of PATH/HOME alone. */
  readonly inheritEnv?: boolean
  /** Written to stdin, which is then closed; without it stdin stays open. */
  readonly input?: string
  /** Kills the process (SIGTERM) after this long; without it, never. */
  readonly timeoutMs?: number
}

/** How to run a CLI command to completion. */
export interface RunCliOptions extends SpawnCliOptions {
  /** Sees everything the process printed, once it has exited. */
  readonly onOutput?: (stdout: string, stderr: string) => void
}

/** A running `sp-connect dev`. */
export interface DevServer {
  readonly child: ChildProcessWithoutNullStreams
  /** The URL it printed, `http://localhost:<port>`. */
  readonly url: string
  readonly port: number
  /** Everything it has printed so far. */
  readonly stdout: () => string
  readonly stderr: () => string
  /** Sends `signal` (SIGTERM by default) unless it has exited, and resolves once it has. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<CliExit>
}

/** How to start `sp-connect dev`. */
export interface StartDevOptions {
  readonly env?: Record<string, string>
  readonly inheritEnv?: boolean
  /** How long it may take to print that it is running. */
  readonly timeoutMs?: number
}

function cliEnv(options: SpawnCliOptions): NodeJS.ProcessEnv {
  const base = options.inheritEnv
    ? process.env
    : { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' }
  return { ...base, ...options.env }
}

/** Starts the CLI with `args`, its three streams piped (stdout and stderr as utf8), for long-running uses. */
export function spawnCli(
  args: readonly string[],
  options: SpawnCliOptions = {},
): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, ['src/cli/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: cliEnv(options),
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
  })
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  if (options.input !== undefined) child.stdin.end(options.input)
  return child
}

async function readAll(stream: Readable): Promise<string> {
  return ((await stream.toArray()) as string[]).join('')
}

/**
 * Runs the CLI with `args` and waits for it to exit. By default: a clean environment (PATH/HOME plus
 * `env`), an empty stdin (or `input`), and killed after 30 s.
 */
export async function runCli(args: readonly string[], options: RunCliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, {
    ...options,
    input: options.input ?? '',
    timeoutMs: options.timeoutMs ?? CLI_TIMEOUT_MS,
  })
  // All three at once: 'close' comes only after both streams have ended, and rejects on a spawn 'error'.
  const [stdout, stderr, [code, signal]] = await Promise.all([
    readAll(child.stdout),
    readAll(child.stderr),
    once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>,
  ])
  options.onOutput?.(stdout, stderr)
  return { code, signal, stdout, stderr }
}

/**
 * Starts `sp-connect dev` with `args` and resolves once it prints "sp-connect dev is running: <url>".
 * Rejects, with what it printed on stderr, if it exits or errors first, or does not start in time (it is
 * then killed).
 */
export function startDev(args: readonly string[], options: StartDevOptions = {}): Promise<DevServer> {
  const child = spawnCli(['dev', ...args], {
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.inheritEnv === undefined ? {} : { inheritEnv: options.inheritEnv }),
  })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<CliExit>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    return exited
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`sp-connect dev did not start\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, options.timeoutMs ?? DEV_STARTUP_TIMEOUT_MS)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`sp-connect dev exited early (${code ?? signal})\nstderr: ${stderr}`))
    })
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk
      const match = stdout.match(RUNNING_LINE)
      if (match?.[1] && match[2]) {
        clearTimeout(timer)
        resolve({
          child,
          url: match[1],
          port: Number(match[2]),
          stdout: () => stdout,
          stderr: () => stderr,
          stop,
        })
      }
    })
  })
}
