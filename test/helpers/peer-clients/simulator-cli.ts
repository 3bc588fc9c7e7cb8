/**
 * `sp-connect simulator --tls --json` as a child process, the way a developer runs it for a third-party
 * client, plus an HTTPS helper that trusts only the CA it generated.
 */

import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { spawnCli } from '../cli.ts'

const STARTUP_TIMEOUT_MS = 30_000

/** What `sp-connect simulator --tls --json` prints once listening. */
export interface TlsSimulatorInfo {
  readonly url: string
  readonly lwa_token_url: string
  readonly ca_cert_path: string
  readonly https_proxy: string
  readonly apps: readonly {
    name: string
    application_id: string
    client_id: string
    client_secret: string
    status: string
  }[]
}

export interface TlsSimulatorCli {
  readonly info: TlsSimulatorInfo
  readonly port: number
  readonly caPem: string
  readonly stderr: () => string
  stop(): Promise<void>
}

/** Starts the CLI with `--tls --json --port 0` and `args`; resolves with the JSON it printed. */
export function startTlsSimulatorCli(args: readonly string[]): Promise<TlsSimulatorCli> {
  const child = spawnCli(['simulator', '--tls', '--json', '--port', '0', ...args])
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`simulator did not start: ${stderr}`))
    }, STARTUP_TIMEOUT_MS)
    let started = false
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (!started) reject(new Error(`simulator exited with ${code}: ${stderr}`))
    })
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk
      let info: TlsSimulatorInfo
      try {
        info = JSON.parse(stdout) as TlsSimulatorInfo
      } catch {
        return // not the whole document yet
      }
      clearTimeout(timer)
      started = true
      resolve({
        info,
        port: Number(new URL(info.url).port),
        caPem: readFileSync(info.ca_cert_path, 'utf8'),
        stderr: () => stderr,
        stop,
      })
    })
  })
}

export interface HttpsAnswer {
  readonly status: number
  readonly body: string
}

/**
 * One HTTPS request to the simulator on 127.0.0.1:`port`, trusting only `caPem`. With `host`, the TLS name
 * and the Host header are that Amazon host, as for a client whose /etc/hosts points it at the simulator.
 */
export function httpsCall(
  port: number,
  caPem: string,
  init: { path: string; host?: string; method?: string; headers?: Record<string, string>; body?: string },
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: init.path,
        method: init.method ?? 'GET',
        ca: caPem,
        ...(init.host === undefined ? {} : { servername: init.host }),
        headers: { ...(init.host === undefined ? {} : { Host: init.host }), ...init.headers },
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(init.body)
  })
}
