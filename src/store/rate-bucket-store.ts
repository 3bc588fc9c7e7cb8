/**
 * Usage-plan buckets shared by every instance on one database: the sub-store behind `Store.rateBuckets`, used by
 * the SP-API call limiter (src/core/spapi/limiter.ts). One row per key (`${connectionId}:${operationName}`).
 *
 * ## The algorithm: GCRA (virtual scheduling), with reservations
 *
 * A plan of `rate` requests per second and `burst` is the token bucket that holds `burst` tokens and gains one
 * every `interval = 1000 / rate` ms. GCRA keeps that bucket as one number per key, the theoretical arrival time
 * `tat` (epoch ms): the bucket is full whenever `tat <= now`, and each request moves `tat` on by one interval.
 * With the tolerance `tau = (burst - 1) * interval`, a request that arrives at `now`:
 *
 *     sendAt = max(now, tat - tau)             when its turn comes (now, if a token is left)
 *     tat'   = max(tat, now) + interval        its slot, taken whether it sends now or later
 *
 * and it is granted only if `sendAt <= deadline`; otherwise nothing changes. Each grant owns the slot
 * `v = max(tat, now)` (the slots of successive grants are at least one interval apart) and sends within
 * `[v - tau, v]`, so any window of length L holds at most `burst + L / interval` sends: exactly the plan,
 * however the callers' `now` values interleave. That is why a reservation can be taken up front and slept on
 * without holding anything: the database only ever sees one short statement per call.
 *
 * ## The statement
 *
 * One `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING` (SQLite ≥ 3.35 and PostgreSQL alike). A new key inserts
 * a full bucket already charged with this request; an existing one updates `tat` with CASE expressions that
 * compute the above from the row's current values. On PostgreSQL under READ COMMITTED, DO UPDATE locks the
 * conflicting row and evaluates SET against its latest committed version, so concurrent reservations queue on
 * the row lock for the duration of one statement and none is lost; on SQLite the statement runs alone.
 * Since RETURNING shows only the new row, `last_send_at` records the outcome of the latest reservation (its send
 * time, or NULL when refused), which the statement reads back from the row it wrote.
 *
 * `tat` and times are fractional milliseconds (`double precision`): intervals such as 1000 / 30 are not whole
 * numbers, and rounding them would either over-send or waste turns. A float64 holds epoch milliseconds to a
 * fraction of a microsecond. There is no index besides the key: every reservation writes `tat`, and an index
 * on it would cost each call an index update (and PostgreSQL its HOT updates) to speed up a sweep every minutes.
 *
 * Durability: on PostgreSQL the table is UNLOGGED (migration 2026-11-30T05), so a reservation's commit waits for
 * no WAL flush; that gave 1.7–2× the reservations per second in the same run (docs/decisions/0015-rate-buckets.md).
 * While the server is up nothing changes. After a server crash, or on a promoted standby, the table is empty: every
 * bucket full, so one burst per key may follow such an event (Amazon's 429s are then backed off from as usual).
 *
 * ## A rate Amazon reports
 *
 * When `x-amzn-RateLimit-Limit` gives a key another rate than the one in force (the stored one, else the plan's),
 * `setRate` converts the bucket's debt in the same statement: the tokens owed, `max(0, tat - now) / oldInterval`,
 * are owed at the new interval, `tat' = now + owed * newInterval`. Without that, a table rate far slower than the
 * seller's real one (0.016/s against 5/s) leaves `tat` minutes ahead after a few calls, and callers are refused
 * for minutes instead of paced. A reported rate at most {@link RATE_CHANGE_TOLERANCE} faster than the one in force
 * is taken as the same rate (Amazon rounds: it reports 0.0167 where the table says 0.016) and changes nothing; a
 * slower one always applies, since keeping the faster rate would send above what Amazon said.
 * Turns granted before the change keep their send times: after a rise they go out later than the converted
 * schedule assumes (see docs/decisions/0015-rate-buckets.md, "Not done").
 *
 * Clocks: `now` comes from the caller, as everywhere in the store. Instances must keep their clocks in sync
 * (NTP); a skew of d ms lets the cluster send at most d / interval requests more than the plan.
 */
import { CompiledQuery, type Expression, type Kysely, type RawBuilder, sql } from 'kysely'
import { SpConnectError } from '../domain/errors.ts'
import type { Database } from './schema.ts'

/** One row per (connection, operation) key that was used recently. */
export interface RateBucketsTable {
  key: string
  /** GCRA theoretical arrival time, epoch ms (fractional). The bucket is full when it is at or before now. */
  tat: number
  /** The rate Amazon reported (`x-amzn-RateLimit-Limit`, requests per second), used instead of the plan's. */
  rate: number | null
  /** Send time granted by the latest reservation, or NULL when that reservation was refused. */
  last_send_at: number | null
}

/** A reservation request: one turn for `key` under a plan of `interval` ms between tokens and `burst`. */
export interface ReserveRequest {
  readonly key: string
  /** Epoch ms. */
  readonly now: number
  /** 1000 / the plan's rate; a rate stored by {@link RateBucketStore.setRate} takes precedence. */
  readonly intervalMs: number
  readonly burst: number
  /** Latest acceptable send time, epoch ms; a turn after it is refused and reserves nothing. */
  readonly deadline: number
}

/** What a reservation got: a turn at `sendAt`, or, refused, the earliest time a turn would have come. */
export interface Reservation {
  readonly granted: boolean
  /** Granted: when the caller may send (epoch ms, >= now). Refused: when its turn would have come. */
  readonly sendAt: number
}

/** The bucket of a key as stored (for operators and tests). */
export interface RateBucketRecord {
  readonly key: string
  readonly tat: number
  readonly rate: number | null
}

/** The usage-plan part of the storage contract. Every write is one atomic statement. */
export interface RateBucketStore {
  /** Takes the next turn for the key if it comes by the deadline (GCRA, see the module comment). */
  reserve(request: ReserveRequest): Promise<Reservation>
  /**
   * Amazon answered 429: nobody gets a turn before `until` (epoch ms), and the bucket is empty then (one turn at
   * `until`, the next an interval later). Never moves a later hold-off earlier.
   */
  holdOff(key: string, until: number, intervalMs: number, burst: number): Promise<void>
  /**
   * Records the rate Amazon reported for the key (requests per second, finite and > 0); later reservations use
   * it instead of their plan's. `intervalMs` is the plan's (1000 / its rate): the rate in force when no rate was
   * stored. A different rate converts the time owed (see "A rate Amazon reports"); one up to
   * {@link RATE_CHANGE_TOLERANCE} faster than the rate in force is ignored. A key without a bucket gets a full one.
   */
  setRate(key: string, rate: number, now: number, intervalMs: number): Promise<void>
  get(key: string): Promise<RateBucketRecord | undefined>
  /**
   * Deletes buckets whose `tat` is before `before` (full since then, so nothing is lost but a reported rate,
   * which the next response reports again); returns how many. The sweeper calls it with now - 1 day.
   */
  sweepIdle(before: number): Promise<number>
}

/**
 * How much faster than the rate in force a reported rate must be to replace it (relative): below it the two are
 * taken as the same rate, so Amazon's rounded figures cause no writes and no rescheduling.
 */
const RATE_CHANGE_TOLERANCE = 0.05

/** The contract's preconditions; a bad plan is a programming error, not a request error. */
export function checkReserveRequest(request: ReserveRequest): void {
  const { now, intervalMs, burst, deadline } = request
  if (!Number.isFinite(now) || !Number.isFinite(deadline)) {
    throw new TypeError('now and deadline must be finite')
  }
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) {
    throw new TypeError('intervalMs must be finite and > 0')
  }
  if (!Number.isSafeInteger(burst) || burst < 1) throw new TypeError('burst must be an integer >= 1')
}

/** A rate must be a finite number of requests per second above zero. */
export function checkRate(rate: number): void {
  if (!(rate > 0) || !Number.isFinite(rate)) throw new TypeError('rate must be finite and > 0')
}

/** Whether a reported `rate` replaces the rate in force (see {@link RATE_CHANGE_TOLERANCE}). */
export function rateChanges(inForce: number, rate: number): boolean {
  return rate < inForce || rate > inForce * (1 + RATE_CHANGE_TOLERANCE)
}

function corrupt(column: string): SpConnectError {
  // The column, never its value.
  return new SpConnectError('internal', { detail: `corrupt row in rate_buckets: column ${column}` })
}

/** PostgreSQL returns float8 as a number; a numeric string (other drivers) is accepted too. */
function finite(column: string, value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN
  if (!Number.isFinite(n)) throw corrupt(column)
  return n
}

function optionalFinite(column: string, value: unknown): number | null {
  return value === null || value === undefined ? null : finite(column, value)
}

/** A number as a `double precision` parameter, so PostgreSQL never infers an integer type for it. */
function num(value: number): RawBuilder<number> {
  return sql<number>`CAST(${value} AS double precision)`
}

/** The larger of two expressions; CASE because SQLite has no GREATEST and PostgreSQL no two-argument MAX. */
function greatest(a: Expression<number>, b: Expression<number>): RawBuilder<number> {
  return sql<number>`(CASE WHEN ${a} > ${b} THEN ${a} ELSE ${b} END)`
}

const TAT = sql.ref<number>('rate_buckets.tat')

/** The stored bucket's interval: Amazon's reported rate when there is one, else the plan's. */
function effectiveInterval(planIntervalMs: number): RawBuilder<number> {
  return effectiveIntervalOf(num(planIntervalMs))
}

function effectiveIntervalOf(planInterval: Expression<number>): RawBuilder<number> {
  return sql<number>`(CASE WHEN rate_buckets.rate IS NULL THEN ${planInterval} ELSE 1000.0 / rate_buckets.rate END)`
}

/** The inputs of the reservation upsert; `tolerance` is burst - 1. */
interface ReserveInputs {
  readonly key: string
  readonly insertTat: number
  readonly insertLastSendAt: number | null
  readonly now: number
  readonly intervalMs: number
  readonly tolerance: number
  readonly deadline: number
}

interface ReserveRow {
  tat: unknown
  rate: unknown
  last_send_at: unknown
}

/** Stands in for one named input while a statement is compiled; never sent to the database. */
class Slot {
  readonly name: string
  constructor(name: string) {
    this.name = name
  }
}

/**
 * A statement compiled once by Kysely for the database's dialect, whose parameters are named inputs: each call
 * binds fresh values to the same SQL text, still as parameters (nothing is ever spliced into the SQL).
 */
class PreparedStatement<I extends object> {
  readonly #sql: string
  readonly #names: readonly (keyof I)[]

  constructor(compiled: CompiledQuery) {
    this.#sql = compiled.sql
    this.#names = compiled.parameters.map((parameter) => {
      // Every parameter must be a slot: a value compiled in would be sent with every later call.
      if (!(parameter instanceof Slot)) throw new TypeError('prepared statement has a fixed parameter')
      return parameter.name as keyof I
    })
  }

  bind(inputs: I): CompiledQuery {
    return CompiledQuery.raw(
      this.#sql,
      this.#names.map((name) => inputs[name]),
    )
  }
}

/**
 * The reservation upsert (see "The statement"), built once with a {@link Slot} per input. Compiling the builder
 * on every call cost about as much CPU as running the statement on SQLite (docs/decisions/0016-passthrough-hot-path.md).
 */
function compileReserve(db: Kysely<Database>): PreparedStatement<ReserveInputs> {
  const slot = <K extends keyof ReserveInputs>(name: K) => new Slot(name) as unknown as ReserveInputs[K]
  const now = num(slot('now'))
  const interval = effectiveIntervalOf(num(slot('intervalMs')))
  const sendAt = greatest(now, sql<number>`${TAT} - ${num(slot('tolerance'))} * ${interval}`)
  const granted = sql<boolean>`${sendAt} <= ${num(slot('deadline'))}`
  const compiled = db
    .insertInto('rate_buckets')
    .values({
      key: slot('key'),
      tat: slot('insertTat'),
      rate: sql<null>`NULL`,
      last_send_at: slot('insertLastSendAt'),
    })
    .onConflict((oc) =>
      oc.column('key').doUpdateSet({
        tat: sql<number>`CASE WHEN ${granted} THEN ${greatest(TAT, now)} + ${interval} ELSE ${TAT} END`,
        last_send_at: sql<number | null>`CASE WHEN ${granted} THEN ${sendAt} ELSE NULL END`,
      }),
    )
    .returning(['tat', 'rate', 'last_send_at'])
    .compile()
  return new PreparedStatement<ReserveInputs>(compiled)
}

/** {@link RateBucketStore} over Kysely: portable statements only, for SQLite and PostgreSQL alike. */
export class KyselyRateBucketStore implements RateBucketStore {
  readonly #db: Kysely<Database>
  /** The reservation upsert, compiled for this database's dialect on first use (see {@link compileReserve}). */
  #reserveStatement: PreparedStatement<ReserveInputs> | undefined

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  async reserve(request: ReserveRequest): Promise<Reservation> {
    checkReserveRequest(request)
    const { key, now, intervalMs, burst, deadline } = request
    // A new key is a full bucket: this request sends now (the caller refused deadlines before now already,
    // but the insert must not grant one either, so it is only a grant when now <= deadline).
    const freshGrant = now <= deadline
    this.#reserveStatement ??= compileReserve(this.#db)
    const result = await this.#db.executeQuery<ReserveRow>(
      this.#reserveStatement.bind({
        key,
        insertTat: freshGrant ? now + intervalMs : now,
        insertLastSendAt: freshGrant ? now : null,
        now,
        intervalMs,
        tolerance: burst - 1,
        deadline,
      }),
    )
    const row = result.rows[0]
    if (row === undefined)
      throw new SpConnectError('internal', { detail: 'rate_buckets upsert returned no row' })
    const lastSendAt = optionalFinite('last_send_at', row.last_send_at)
    if (lastSendAt !== null) return { granted: true, sendAt: lastSendAt }
    // Refused: the row is unchanged, so its turn is computed from it as the statement did.
    const tat = finite('tat', row.tat)
    const rate = optionalFinite('rate', row.rate)
    const effective = rate === null ? intervalMs : 1000 / rate
    return { granted: false, sendAt: Math.max(now, tat - (burst - 1) * effective) }
  }

  async holdOff(key: string, until: number, intervalMs: number, burst: number): Promise<void> {
    // NaN would sort above every time in PostgreSQL and hold the key off forever.
    checkReserveRequest({ key, now: until, intervalMs, burst, deadline: until })
    const held = sql<number>`${num(until)} + ${num(burst - 1)} * ${effectiveInterval(intervalMs)}`
    await this.#db
      .insertInto('rate_buckets')
      .values({ key, tat: until + (burst - 1) * intervalMs, rate: null, last_send_at: null })
      .onConflict((oc) => oc.column('key').doUpdateSet({ tat: greatest(TAT, held) }))
      .execute()
  }

  async setRate(key: string, rate: number, now: number, intervalMs: number): Promise<void> {
    checkRate(rate)
    checkReserveRequest({ key, now, intervalMs, burst: 1, deadline: now })
    const planRate = 1000 / intervalMs
    // SET expressions all read the row as it was, so the old rate and interval below are the ones in force.
    const oldRate = sql<number>`(CASE WHEN rate_buckets.rate IS NULL THEN ${num(planRate)} ELSE rate_buckets.rate END)`
    const changed = sql<boolean>`(${num(rate)} < ${oldRate} OR ${num(rate)} > ${oldRate} * ${num(1 + RATE_CHANGE_TOLERANCE)})`
    const owed = sql<number>`(${TAT} - ${num(now)}) / ${effectiveInterval(intervalMs)}`
    await this.#db
      .insertInto('rate_buckets')
      .values({ key, tat: now, rate: rateChanges(planRate, rate) ? rate : null, last_send_at: null })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          tat: sql<number>`CASE WHEN ${changed} AND ${TAT} > ${num(now)} THEN ${num(now)} + ${owed} * ${num(1000 / rate)} ELSE ${TAT} END`,
          rate: sql<number | null>`CASE WHEN ${changed} THEN ${num(rate)} ELSE rate_buckets.rate END`,
        }),
      )
      .execute()
  }

  async get(key: string): Promise<RateBucketRecord | undefined> {
    const row = await this.#db
      .selectFrom('rate_buckets')
      .select(['key', 'tat', 'rate'])
      .where('key', '=', key)
      .executeTakeFirst()
    return row && { key: row.key, tat: finite('tat', row.tat), rate: optionalFinite('rate', row.rate) }
  }

  async sweepIdle(before: number): Promise<number> {
    const result = await this.#db.deleteFrom('rate_buckets').where('tat', '<', before).executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
