/**
 * PostgreSQL's side of waiting for a connection to change (connection-changes.ts): a dedicated listening
 * connection per store.
 *
 * ## Connection changes (LISTEN/NOTIFY)
 *
 * The writes that end a wait for another process's refresh send `pg_notify` on
 * {@link CONNECTION_CHANGED_CHANNEL} in the same statement (connection-store.ts says why there). Each store has one
 * dedicated connection, outside the pool, that runs `LISTEN` on that channel and wakes this handle's
 * `waitForConnectionChange` callers for the connection id in each payload ({@link ConnectionChangeListener}).
 * It is opened with the store; if it drops (or its heartbeat, a `select 1` every 30 s, gets no answer) it is
 * reopened with backoff (100 ms doubling to 10 s), and every waiter is woken once it listens again, since
 * notifications sent meanwhile are lost. While it is down, waits simply run to their timeout: the callers'
 * polling is the fallback, so nothing depends on a notification arriving. `notify: false` turns both sides
 * off (no LISTEN connection, no `pg_notify`), e.g. behind a pooler that cannot keep a session's LISTEN.
 */
import { Client, type ClientConfig } from 'pg'
import { CONNECTION_CHANGED_CHANNEL, type ConnectionChangeWaiters } from './connection-changes.ts'
import { errorCode, type PostgresStoreLogger } from './postgres-driver.ts'

/** First pause before reopening the listening connection; doubles up to the maximum, ± 50 % jitter. */
const LISTEN_RETRY_MIN_MS = 100
const LISTEN_RETRY_MAX_MS = 10_000
/** An idle listening connection runs `select 1` this often, so one that died silently is noticed and replaced. */
const LISTEN_HEARTBEAT_MS = 30_000
/** Client-side bound on the listening connection's statements (LISTEN, the heartbeat). */
export const LISTEN_QUERY_TIMEOUT_MS = 10_000

/**
 * The store's dedicated LISTEN connection (not from the pool: a pooled session would lose its LISTEN when
 * released, and must not be held forever). Turns notifications on {@link CONNECTION_CHANGED_CHANNEL} into
 * wake-ups of the store's waiters; reopens itself with backoff when lost. See the module comment.
 */
export class ConnectionChangeListener {
  readonly #config: ClientConfig
  readonly #waiters: ConnectionChangeWaiters
  readonly #logger: PostgresStoreLogger
  /** The current connection, connected or connecting; undefined while waiting to retry, and once closed. */
  #client: Client | undefined
  /** The pending reconnect or heartbeat. */
  #timer: NodeJS.Timeout | undefined
  #retryMs = LISTEN_RETRY_MIN_MS
  /** A warning was logged for the current outage (one per outage, like the pool's). */
  #down = false
  #closed = false

  constructor(config: ClientConfig, waiters: ConnectionChangeWaiters, logger: PostgresStoreLogger) {
    this.#config = config
    this.#waiters = waiters
    this.#logger = logger
  }

  /** The first attempt; never throws (a failure is logged and retried in the background). */
  start(): Promise<void> {
    return this.#open()
  }

  async #open(): Promise<void> {
    this.#timer = undefined
    if (this.#closed) return
    const client = new Client(this.#config)
    this.#client = client
    // For the client's whole life: an unheard 'error' would crash the process.
    client.on('error', (error) => this.#lost(client, error))
    client.on('end', () => this.#lost(client, new Error('Connection terminated')))
    client.on('notification', (message) => {
      if (message.channel === CONNECTION_CHANGED_CHANNEL && message.payload) {
        this.#waiters.wake(message.payload)
      }
    })
    try {
      await client.connect()
      await client.query(`listen ${CONNECTION_CHANGED_CHANNEL}`)
    } catch (error) {
      this.#lost(client, error)
      return
    }
    if (this.#client !== client) return
    this.#retryMs = LISTEN_RETRY_MIN_MS
    this.#down = false
    // Notifications sent while nobody listened are gone: every waiter re-reads its row now.
    this.#waiters.wakeAll()
    this.#heartbeat(client)
  }

  #heartbeat(client: Client): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      client.query('select 1').then(
        () => {
          if (this.#client === client) this.#heartbeat(client)
        },
        (error: unknown) => this.#lost(client, error),
      )
    }, LISTEN_HEARTBEAT_MS)
    // Never what keeps a process alive.
    this.#timer.unref()
  }

  /** Drops `client` (if it is still the current one) and schedules the next attempt. */
  #lost(client: Client, error: unknown): void {
    if (this.#client !== client) return
    this.#client = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
    client.end().catch(() => {})
    if (this.#closed) return
    if (!this.#down) {
      this.#down = true
      const code = errorCode(error)
      this.#logger.warn(
        { event: 'postgres.listen_lost', ...(code === undefined ? {} : { code }) },
        `PostgreSQL listening connection lost (${error instanceof Error ? error.message : 'unknown error'}); waits for other instances' refreshes poll until it is back`,
      )
    }
    const delay = this.#retryMs * (0.5 + Math.random())
    this.#retryMs = Math.min(this.#retryMs * 2, LISTEN_RETRY_MAX_MS)
    this.#timer = setTimeout(() => void this.#open(), delay)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => {})
  }
}
