/**
 * Deletes rows whose time is over (expired or used authorization states, connect sessions, login requests,
 * operator sessions) on a schedule, so a flood of unauthenticated requests that each write a row cannot grow a
 * table without bound: each table holds at most what arrives within its rows' lifetime plus one interval.
 * Every instance sweeps; the deletes are idempotent, so instances racing each other only repeat work.
 */
import type { Deps } from '../deps.ts'

/** One kind of row to delete: `run` deletes what is over at `now` and returns how many rows went. */
export interface Sweep {
  readonly name: string
  run(now: number): Promise<number>
}

interface SweeperOptions {
  readonly sweeps: readonly Sweep[]
  /** Average pause between rounds; each pause is jittered by ±20% so instances spread out. */
  readonly intervalMs: number
}

interface SweepOutcome {
  readonly name: string
  /** Rows deleted, or undefined when the sweep failed. */
  readonly deleted: number | undefined
}

const JITTER = 0.2

export class Sweeper {
  readonly #sweeps: readonly Sweep[]
  readonly #intervalMs: number
  readonly #deps: Pick<Deps, 'now' | 'logger' | 'random'>
  #timer: NodeJS.Timeout | undefined
  #running: Promise<unknown> | undefined
  #stopped = true

  constructor(options: SweeperOptions, deps: Pick<Deps, 'now' | 'logger' | 'random'>) {
    this.#sweeps = options.sweeps
    this.#intervalMs = options.intervalMs
    this.#deps = deps
  }

  /** Runs every sweep once, one after the other; a failing sweep is logged and the others still run. */
  async runOnce(): Promise<SweepOutcome[]> {
    const outcomes: SweepOutcome[] = []
    for (const sweep of this.#sweeps) {
      try {
        const deleted = await sweep.run(this.#deps.now())
        outcomes.push({ name: sweep.name, deleted })
        // Counts only: the rows hold hashes of secrets and tenant ids.
        if (deleted > 0) this.#deps.logger.info({ sweep: sweep.name, deleted }, 'swept expired rows')
      } catch (error) {
        outcomes.push({ name: sweep.name, deleted: undefined })
        this.#deps.logger.warn(
          { sweep: sweep.name, errorName: error instanceof Error ? error.name : typeof error },
          'sweep failed',
        )
      }
    }
    return outcomes
  }

  /** Sweeps every interval (jittered) until {@link stop}; the first round comes after one interval. */
  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#schedule()
  }

  /** Stops the schedule and waits for a round in progress. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#running
  }

  #schedule(): void {
    if (this.#stopped) return
    const jitter = 1 - JITTER + 2 * JITTER * this.#deps.random()
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        this.#running = this.runOnce().finally(() => {
          this.#running = undefined
          this.#schedule()
        })
      },
      Math.round(this.#intervalMs * jitter),
    )
    // A pending sweep never keeps the process alive.
    this.#timer.unref()
  }
}
