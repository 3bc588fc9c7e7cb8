/**
 * PostgreSQL for the benchmarks: a database of its own per scenario (`sp_connect_bench_<random>`, UTF8 with the
 * C collation, as docs/deployment.md advises), dropped afterwards; many connections inserted fast with batched
 * multi-row INSERTs through Kysely on the store's own schema; and the size of a table on disk.
 *
 * The server comes from SP_CONNECT_BENCH_DATABASE_URL, else the local default the tests use
 * (postgres://postgres@127.0.0.1:5432/postgres). Only its host, port and database are ever printed.
 */
import { randomBytes } from 'node:crypto'
import { type CompiledQuery, type Insertable, Kysely, PostgresDialect, sql } from 'kysely'
import { Client, escapeIdentifier, Pool } from 'pg'
import { newId } from '../../src/core/encoding.ts'
import { sealToken } from '../../src/core/tokens/sealed.ts'
import type { Runtime } from '../../src/runtime.ts'
import { createKyselyStore, openPostgresKysely, type RefreshCandidateQuery } from '../../src/store/index.ts'
import type { Database } from '../../src/store/schema.ts'

export const DEFAULT_BENCH_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

/** The server the PostgreSQL benchmarks create their databases on. */
export function benchPostgresUrl(): string {
  return process.env['SP_CONNECT_BENCH_DATABASE_URL'] || DEFAULT_BENCH_POSTGRES_URL
}

/** Host, port and database of a URL, never its credentials. */
export function where(url: string): string {
  const u = new URL(url)
  return `${u.hostname}:${u.port || '5432'}${u.pathname}`
}

/** Runs `work` on a single connection to `url`, with a clear error when the server cannot be reached. */
export async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(
      `PostgreSQL at ${where(url)} is unreachable (${error instanceof Error ? error.message : String(error)}); set SP_CONNECT_BENCH_DATABASE_URL`,
    )
  }
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => {})
  }
}

/** A database created for one benchmark. */
export interface BenchDatabase {
  readonly name: string
  readonly url: string
  /** Drops it, disconnecting whoever is still connected. */
  drop(): Promise<void>
}

/** Creates `sp_connect_bench_<random>` on the benchmark server. */
export async function createBenchDatabase(serverUrl = benchPostgresUrl()): Promise<BenchDatabase> {
  const name = `sp_connect_bench_${randomBytes(6).toString('hex')}`
  // Identifiers cannot be bound as parameters; this one is ours (letters, digits, _) and quoted anyway.
  await withClient(serverUrl, (client) =>
    client.query(
      `create database ${escapeIdentifier(name)} template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`,
    ),
  )
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    name,
    url: url.toString(),
    drop: () =>
      withClient(serverUrl, (client) =>
        client.query(`drop database if exists ${escapeIdentifier(name)} with (force)`),
      ).then(() => undefined),
  }
}

/** The server's version and the settings that decide how fast a commit is. */
export async function serverInfo(url: string): Promise<{
  version: string
  fsync: string
  synchronousCommit: string
  sharedBuffers: string
  maxConnections: number
}> {
  return withClient(url, async (client) => {
    const show = async (name: string) =>
      String((await client.query<Record<string, string>>(`show ${name}`)).rows[0]?.[name] ?? '')
    return {
      version: await show('server_version'),
      fsync: await show('fsync'),
      synchronousCommit: await show('synchronous_commit'),
      sharedBuffers: await show('shared_buffers'),
      maxConnections: Number(await show('max_connections')),
    }
  })
}

/** What a table takes on disk: the heap (with its TOAST), its indexes, and the rows in it. */
export interface TableSize {
  readonly rows: number
  /** `pg_total_relation_size`: heap, TOAST, free-space and visibility maps, and every index. */
  readonly totalBytes: number
  /** `pg_table_size`: heap, TOAST and maps, without indexes. */
  readonly tableBytes: number
  /** `pg_indexes_size`. */
  readonly indexBytes: number
  /** Average `pg_column_size` of a whole row (its stored, possibly compressed width, without tuple overhead). */
  readonly avgRowBytes: number
  /** How many indexes the table has. */
  readonly indexes: number
}

export async function tableSize(url: string, table: string): Promise<TableSize> {
  return withClient(url, async (client) => {
    const t = escapeIdentifier(table)
    const { rows } = await client.query<{
      rows: string
      total: string
      heap: string
      indexes: string
      avg_row: string | null
      index_count: string
    }>(
      `select (select count(*) from ${t}) as rows,
              (select count(*) from pg_indexes where schemaname = current_schema() and tablename = $1::text) as index_count,
              pg_total_relation_size($1::text::regclass) as total,
              pg_table_size($1::text::regclass) as heap,
              pg_indexes_size($1::text::regclass) as indexes,
              (select avg(pg_column_size(x.*)) from ${t} as x) as avg_row`,
      [table],
    )
    const r = rows[0]
    if (!r) throw new Error(`no size for ${table}`)
    return {
      rows: Number(r.rows),
      totalBytes: Number(r.total),
      tableBytes: Number(r.heap),
      indexBytes: Number(r.indexes),
      avgRowBytes: Math.round(Number(r.avg_row ?? 0)),
      indexes: Number(r.index_count),
    }
  })
}

/** Runs one statement (VACUUM, CHECKPOINT…) outside a transaction. */
export async function execute(url: string, statement: string): Promise<void> {
  await withClient(url, (client) => client.query(statement))
}

/** One connection to insert: its partner, its refresh token, and optionally an access token and last use. */
export interface BulkConnection {
  readonly sellingPartnerId: string
  readonly refreshToken: string
  readonly accessToken?: { readonly token: string; readonly expiresAt: number }
  readonly lastUsedAt?: number
}

/**
 * Inserts connections as an authorization would leave them (tokens sealed with the runtime's keyring, for
 * their own row), `batch` rows per multi-row INSERT, `parallel` statements at a time, straight into the
 * store's `connections` table (the runtime must have migrated it). Returns the ids, in order.
 */
export async function bulkInsertConnections(
  runtime: Runtime,
  databaseUrl: string,
  connections: readonly BulkConnection[],
  options: { batch?: number; parallel?: number } = {},
): Promise<string[]> {
  const batch = options.batch ?? 1_000
  const parallel = options.parallel ?? 2
  const { keyring, deps } = runtime
  const now = deps.now()
  const db = openPostgresKysely({ url: databaseUrl, poolSize: parallel })
  const ids = connections.map(() => newId('con', deps.randomBytes))
  try {
    let next = 0
    const worker = async () => {
      for (let start = next; start < connections.length; start = next) {
        next += batch
        const rows: Insertable<Database['connections']>[] = []
        for (let i = start; i < Math.min(start + batch, connections.length); i++) {
          const c = connections[i]
          const id = ids[i]
          if (!c || !id) continue
          rows.push({
            id,
            selling_partner_id: c.sellingPartnerId,
            region: 'na',
            account_type: 'seller',
            tenant_id: null,
            status: 'active',
            status_reason: null,
            refresh_token_ciphertext: sealToken(keyring, id, 'refresh_token', c.refreshToken),
            access_token_ciphertext: c.accessToken
              ? sealToken(keyring, id, 'access_token', c.accessToken.token)
              : null,
            access_token_expires_at: c.accessToken?.expiresAt ?? null,
            authorized_at: now,
            reauthorize_by: now + 365 * 24 * 3600 * 1000,
            last_refresh_at: null,
            last_refresh_error: null,
            failure_count: 0,
            lease_owner: null,
            lease_until: null,
            last_used_at: c.lastUsedAt ?? null,
            refresh_not_before: null,
            reauth_reminder_days: null,
            version: 1,
            created_at: now,
            updated_at: now,
          })
        }
        await db.insertInto('connections').values(rows).execute()
      }
    }
    await Promise.all(Array.from({ length: parallel }, worker))
    // Fresh statistics, as autovacuum would gather soon after a load this size, so the planner sees the rows.
    await sql`analyze connections`.execute(db)
  } finally {
    await db.destroy()
  }
  return ids
}

/** What PostgreSQL does for the refresher's claim query: its plan, as run once (and rolled back). */
export interface ClaimPlan {
  /** The plan's nodes, outermost first, e.g. `Sort (external merge, Disk 4680 kB)`. */
  readonly nodes: readonly string[]
  readonly executionMs: number
  /** Rows the sequential scans under the claim returned (0 when the plan has none). */
  readonly seqScanRows: number
}

interface PlanNode {
  readonly 'Node Type': string
  readonly Operation?: string
  readonly 'Relation Name'?: string
  readonly 'Index Name'?: string
  readonly 'Sort Method'?: string
  readonly 'Sort Space Used'?: number
  readonly 'Sort Space Type'?: string
  readonly 'Actual Rows'?: number
  readonly 'Actual Loops'?: number
  readonly Plans?: readonly PlanNode[]
}

function describe(node: PlanNode, out: string[], scanned: { rows: number }): void {
  let text = node['Node Type'] === 'ModifyTable' ? (node.Operation ?? 'ModifyTable') : node['Node Type']
  if (node['Index Name']) text += ` using ${node['Index Name']}`
  else if (node['Relation Name']) text += ` on ${node['Relation Name']}`
  if (node['Sort Method'])
    text += ` (${node['Sort Method']}, ${node['Sort Space Type']} ${node['Sort Space Used']} kB)`
  if (/Scan/.test(node['Node Type']) && node['Actual Rows'] !== undefined) {
    const rows = node['Actual Rows'] * (node['Actual Loops'] ?? 1)
    text += `, ${rows.toLocaleString('en-US')} rows`
    if (node['Node Type'] === 'Seq Scan') scanned.rows += rows
  }
  out.push(text)
  for (const child of node.Plans ?? []) describe(child, out, scanned)
}

/**
 * Runs the store's `claimRefreshCandidates` once with the refresher's query through a Kysely that records the
 * SQL (with a lease that has already expired, so the rows stay claimable, then cleared), and `EXPLAIN ANALYZE`s
 * that SQL inside a transaction that is rolled back.
 */
export async function claimPlan(
  databaseUrl: string,
  query: RefreshCandidateQuery,
  now: number,
): Promise<ClaimPlan> {
  const statements: CompiledQuery[] = []
  const pool = new Pool({ connectionString: databaseUrl, max: 1 })
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log: (event) => {
      if (event.level === 'query') statements.push(event.query)
    },
  })
  try {
    const store = createKyselyStore(db, { dialect: 'postgres' })
    await store.claimRefreshCandidates(query, 'bench-plan', now - 1)
    await sql`update connections set lease_owner = null, lease_until = null where lease_owner = 'bench-plan'`.execute(
      db,
    )
  } finally {
    await db.destroy()
  }
  const claim = statements.find((s) => /skip locked/i.test(s.sql)) ?? statements[0]
  if (!claim) throw new Error('the claim statement was not seen')
  return withClient(databaseUrl, async (client) => {
    await client.query('begin')
    try {
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode; 'Execution Time': number }] }>(
        `explain (analyze, format json) ${claim.sql}`,
        [...claim.parameters],
      )
      const plan = rows[0]?.['QUERY PLAN'][0]
      if (!plan) throw new Error('no plan')
      const nodes: string[] = []
      const scanned = { rows: 0 }
      describe(plan.Plan, nodes, scanned)
      return { nodes, executionMs: Math.round(plan['Execution Time']), seqScanRows: scanned.rows }
    } finally {
      await client.query('rollback')
    }
  })
}
