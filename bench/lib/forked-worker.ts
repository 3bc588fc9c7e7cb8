/**
 * A benchmark worker in a child process (`child_process.fork` of a .ts file), spoken to one request at a time
 * over the IPC channel: each request waits for the worker's next reply, which is an error when its `type` is
 * `error`. The worker is expected to exit when its channel closes, so a killed parent leaves nothing behind.
 */
import { type ChildProcess, fork } from 'node:child_process'

export class ForkedWorker<Request, Reply extends { readonly type: string }> {
  readonly child: ChildProcess
  #waiting: ((reply: Reply) => void) | undefined

  constructor(script: string, execArgv: readonly string[] = []) {
    this.child = fork(script, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [...process.execArgv.filter((a) => a !== '--expose-gc'), ...execArgv],
    })
    this.child.on('message', (reply: Reply) => {
      const waiting = this.#waiting
      this.#waiting = undefined
      waiting?.(reply)
    })
  }

  get pid(): number {
    return this.child.pid ?? -1
  }

  request(message: Request, timeoutMs: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('benchmark worker did not answer in time')), timeoutMs)
      const exited = (code: number | null) => {
        clearTimeout(timer)
        reject(new Error(`benchmark worker exited (${code}) before answering`))
      }
      this.child.once('exit', exited)
      this.#waiting = (reply) => {
        clearTimeout(timer)
        this.child.off('exit', exited)
        if (reply.type === 'error' && 'message' in reply) reject(new Error(String(reply.message)))
        else resolve(reply)
      }
      this.child.send(message as object)
    })
  }

  /** Sends `closeMessage` and waits for the exit (SIGKILL after 5 s). */
  async close(closeMessage: Request): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000)
    if (this.child.connected) this.child.send(closeMessage as object)
    else this.child.kill('SIGKILL')
    await exited
    clearTimeout(timer)
  }
}
