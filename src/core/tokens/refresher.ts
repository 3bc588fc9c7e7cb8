/**
 * The background refresher: keeps recently used connections' access tokens fresh before callers need them,
 * health-checks idle connections once a day so revocations surface before anyone asks, and sends the
 * 30/7/1-day re-authorization reminders.
 *
 * Work is spread out: a per-instance rate limit on token-endpoint calls (so a restart after downtime cannot
 * burst thousands of calls), a concurrency cap, jitter, halving the rate when LWA answers 429, and yielding to
 * callers who are waiting for a token. Several instances can run it at once: each refresh takes the
 * connection's lease, and candidates whose lease is held are skipped.
 */
import { isSpConnectError } from '../../domain/errors.ts'
import type {
  ConnectionRecord,
  ConnectionStore,
  RefreshCandidateQuery,
  RefresherStore,
} from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import type { EventRecorder } from '../events/events.ts'
import { NO_METRICS } from '../metrics.ts'
import type { TokenManager } from './manager.ts'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** The refresher's defaults for which connections are due; the metrics' backlog gauge uses the same. */
export const REFRESHER_DEFAULTS = {
  warmWindowMs: 6 * HOUR,
  lookaheadMs: 10 * MINUTE,
  idleCheckIntervalMs: DAY,
} as const

interface RefresherOptions {
  readonly store: RefresherStore & Pick<ConnectionStore, 'releaseLease'>
  readonly tokens: TokenManager
  readonly events: EventRecorder
  /** Refreshes in flight at once. */
  readonly concurrency: number
  /** Token-endpoint calls per second, at most. */
  readonly ratePerSecond: number
  /** Connections used this recently are kept warm. */
  readonly warmWindowMs?: number
  /** Warm connections are refreshed when less than margin + lookahead is left. */
  readonly lookaheadMs?: number
  /** Every connection is refreshed at least this often, to detect revocation. */
  readonly idleCheckIntervalMs?: number
  readonly pollIntervalMs?: number
  readonly batchSize?: number
  /** Days before `reauthorize_by` at which a reminder event is sent. */
  readonly reminderDays?: readonly number[]
}

interface RefreshRound {
  readonly refreshed: number
  readonly needsReauthorization: number
  readonly failed: number
  readonly throttled: boolean
  readonly reminded: number
}

export class BackgroundRefresher {
  readonly #options: Required<RefresherOptions>
  readonly #deps: Deps
  #rate: number
  #nextSlotAt = 0
  #stopping: AbortController | undefined
  #loop: Promise<void> | undefined

  constructor(options: RefresherOptions, deps: Deps) {
    this.#options = {
      ...REFRESHER_DEFAULTS,
      pollIntervalMs: 15_000,
      batchSize: 200,
      reminderDays: [30, 7, 1],
      ...options,
    }
    this.#deps = deps
    this.#rate = options.ratePerSecond
  }

  /** The rate currently allowed (lower than configured after 429s, recovering over rounds). */
  get currentRatePerSecond(): number {
    return this.#rate
  }

  /**
   * One pass: claim due connections in small batches (so several instances divide the work), refresh them
   * under the rate limit and concurrency cap, then send due reminders.
   */
  async runOnce(signal?: AbortSignal): Promise<RefreshRound> {
    const roundStart = this.#deps.now()
    const o = this.#options
    const query = {
      now: roundStart,
      warmUsedSince: roundStart - o.warmWindowMs,
      warmExpiringBefore: roundStart + o.tokens.refreshMarginMs + o.lookaheadMs,
      idleCheckedBefore: roundStart - o.idleCheckIntervalMs,
      limit: 1,
    } satisfies RefreshCandidateQuery
    const counts = { refreshed: 0, needsReauthorization: 0, failed: 0, throttled: false }
    const owner = o.tokens.owner
    // Claims are taken in small batches, about two seconds of work at the current rate: each claim query scans
    // the due connections, and a claimed connection should not wait long for its refresh.
    const queue: ConnectionRecord[] = []
    let budget = o.batchSize
    let exhausted = false
    let refill: Promise<void> | undefined
    const claimMore = async () => {
      const size = Math.min(budget, 100, Math.max(o.concurrency, Math.ceil(this.#rate * 2)))
      if (size <= 0 || counts.throttled || signal?.aborted) {
        exhausted = true
        return
      }
      const now = this.#deps.now()
      const claimed = await o.store.claimRefreshCandidates(
        { ...query, now, limit: size },
        owner,
        now + o.tokens.leaseMs,
      )
      budget -= claimed.length
      if (claimed.length < size) exhausted = true
      queue.push(...claimed)
    }
    const next = async (): Promise<ConnectionRecord | undefined> => {
      while (queue.length === 0 && !exhausted) {
        refill ??= claimMore().finally(() => {
          refill = undefined
        })
        await refill
      }
      return queue.shift()
    }
    const worker = async () => {
      for (let row = await next(); row !== undefined; row = await next()) {
        try {
          if (counts.throttled || signal?.aborted) continue
          await this.#takeSlot(signal)
          await this.#refreshOne(row, roundStart, counts)
        } finally {
          // Also frees claims left unprocessed after a 429 or a stop; a no-op if the refresh released it.
          await o.store.releaseLease(row.id, owner)
        }
      }
    }
    await Promise.all(Array.from({ length: o.concurrency }, worker))
    // Additive recovery after a clean round, multiplicative decrease happened on 429.
    if (!counts.throttled) this.#rate = Math.min(o.ratePerSecond, this.#rate * 1.25)
    const reminded = signal?.aborted ? 0 : await this.#sendReminders(this.#deps.now())
    return { ...counts, reminded }
  }

  start(): void {
    if (this.#loop) return
    const stopping = new AbortController()
    this.#stopping = stopping
    this.#loop = (async () => {
      // Instances started together should not poll in lockstep.
      await this.#pause(this.#options.pollIntervalMs * this.#deps.random(), stopping.signal)
      while (!stopping.signal.aborted) {
        try {
          await this.runOnce(stopping.signal)
        } catch (error) {
          this.#deps.logger.error(
            { code: isSpConnectError(error) ? error.code : 'unexpected' },
            'refresher round failed',
          )
        }
        await this.#pause(this.#options.pollIntervalMs * (0.75 + this.#deps.random() / 2), stopping.signal)
      }
    })()
  }

  async stop(): Promise<void> {
    this.#stopping?.abort()
    await this.#loop
    this.#loop = undefined
  }

  async #refreshOne(
    row: ConnectionRecord,
    roundStart: number,
    counts: { refreshed: number; needsReauthorization: number; failed: number; throttled: boolean },
  ): Promise<void> {
    const o = this.#options
    const warm = row.lastUsedAt !== null && row.lastUsedAt >= roundStart - o.warmWindowMs
    try {
      await o.tokens.getAccessToken(row.id, {
        priority: 'background',
        minValidityMs: o.tokens.refreshMarginMs + o.lookaheadMs,
        // An idle connection's token may be valid; the point of the daily refresh is to prove the grant still is.
        forceRefresh: !warm,
      })
      counts.refreshed++
      this.#metrics.refresh('background', 'ok')
    } catch (error) {
      const code = isSpConnectError(error) ? error.code : 'internal'
      if (code === 'connection_needs_reauthorization') counts.needsReauthorization++
      else counts.failed++
      this.#metrics.refresh(
        'background',
        code === 'connection_needs_reauthorization' ? 'invalid_grant' : 'error',
      )
      // LWA signals throttling with HTTP 429 (its body may say temporarily_unavailable).
      if (code === 'lwa_throttled' || httpStatusOf(error) === 429) {
        counts.throttled = true
        this.#rate = Math.max(0.1, this.#rate / 2)
      }
    }
  }

  /** Waits for the next rate-limit slot (with jitter inside it), and while callers are waiting for tokens. */
  async #takeSlot(signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < 50 && this.#options.tokens.onDemandWaiting > 0; i++) await this.#pause(20, signal)
    const spacing = 1000 / this.#rate
    const now = this.#deps.now()
    const slot = Math.max(now, this.#nextSlotAt)
    this.#nextSlotAt = slot + spacing
    const wait = slot - now + spacing * 0.5 * this.#deps.random()
    if (wait > 0) await this.#pause(wait, signal)
  }

  async #sendReminders(now: number): Promise<number> {
    const o = this.#options
    const days = [...o.reminderDays].sort((a, b) => a - b)
    const horizon = Math.max(...days)
    const due = await o.store.listConnectionsReauthorizeBefore(now + horizon * DAY, o.batchSize * 5)
    let sent = 0
    for (const row of due) {
      const left = (row.reauthorizeBy - now) / DAY
      const threshold = days.find((d) => left <= d)
      if (threshold === undefined) continue
      if (row.reauthReminderDays !== null && row.reauthReminderDays <= threshold) continue
      if (await o.store.markReauthorizationReminder(row.id, row.authorizedAt, threshold)) {
        await o.events.record('connection.reauthorization_due', row.id, {
          daysLeft: threshold,
          reauthorizeBy: new Date(row.reauthorizeBy).toISOString(),
        })
        sent++
      }
    }
    return sent
  }

  get #metrics() {
    return this.#deps.metrics ?? NO_METRICS
  }

  async #pause(ms: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.#deps.sleep(ms, signal)
    } catch {
      // Aborted: the loop checks the signal.
    }
  }
}

function httpStatusOf(error: unknown): number | undefined {
  return typeof error === 'object' &&
    error !== null &&
    'httpStatus' in error &&
    typeof error.httpStatus === 'number'
    ? error.httpStatus
    : undefined
}
