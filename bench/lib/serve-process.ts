/**
 * `sp-connect serve` as a real child process, as an operator runs it (`node src/cli/main.ts serve` from the
 * repository root, configured by exactly the environment given plus PATH/HOME), on a free port of 127.0.0.1,
 * and what it and other processes cost in CPU. Its output goes nowhere: at the default log level `info` it
 * writes one JSON line per request, which a benchmark should not have to read.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const TICKS_PER_SECOND = 100

/** A port that was free a moment ago: bound on 127.0.0.1 with port 0, then closed for someone else to take. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** CPU-seconds a (running) process has used so far, from /proc; 0 where there is no /proc. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / TICKS_PER_SECOND
  } catch {
    return 0
  }
}

export interface ServeProcess {
  readonly url: string
  readonly pid: number
  /** SIGTERM (the graceful shutdown), SIGKILL after 10 s; resolves once it has exited. */
  stop(): Promise<void>
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

/**
 * Starts `sp-connect serve` with `env` and resolves once `/healthz` answers 200 (within 30 s). `nodeArgs` go to
 * Node before the script (say `--cpu-prof`, for bench/lib/profile-token-api.ts).
 */
export async function startServe(
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): Promise<ServeProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const child = spawn(process.execPath, [...nodeArgs, CLI, 'serve'], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '',
        ...env,
        PORT: String(port),
        SP_CONNECT_HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4_000)
    })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    const stop = async () => {
      if (!running(child)) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    const url = `http://127.0.0.1:${port}`
    const deadline = Date.now() + 30_000
    while (running(child) && Date.now() < deadline) {
      try {
        const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })
        await response.body?.cancel()
        if (response.status === 200) return { url, pid: child.pid ?? -1, stop }
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await stop()
    // Someone took the port between our check and its listen: try another one.
    if (stderr.includes('EADDRINUSE') && attempt < 3) continue
    throw new Error(`sp-connect serve did not become healthy:\n${stderr}`)
  }
}
