/** Reads the raw rows of the stored tables from the SQLite file, to prove a request changed nothing. */
import { DatabaseSync } from 'node:sqlite'

export function snapshotDb(path: string, options: { except?: readonly string[] } = {}): string {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    const tables = ['connections', 'auth_states', 'connect_sessions', 'events', 'login_requests'].filter(
      (table) => !options.except?.includes(table),
    )
    return JSON.stringify(
      tables.map((table) => db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all()),
      (_key, value) => (typeof value === 'bigint' ? value.toString() : value),
    )
  } finally {
    db.close()
  }
}
