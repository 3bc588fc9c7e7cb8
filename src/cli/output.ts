/** Plain-text tables and JSON for the CLI. */
import type { ConnectionJson } from '../server/serialize.ts'

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

/**
 * What every data-printing command does with `--json`: `value` as JSON on stdout, or else `human()` prints the
 * plain-text form. One place, so every `--json` output has the same shape (indented, one document, newline).
 */
export function printOutput(json: boolean | undefined, value: unknown, human: () => void): void {
  if (json) printJson(value)
  else human()
}

export function printTable(rows: readonly (readonly string[])[]): void {
  const widths: number[] = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length)
    })
  }
  for (const row of rows) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    )
  }
}

export function connectionRows(connections: readonly ConnectionJson[]): string[][] {
  return [
    ['ID', 'SELLING PARTNER', 'REGION', 'TYPE', 'STATUS', 'AUTHORIZED', 'REAUTHORIZE BY'],
    ...connections.map((c) => [
      c.id,
      c.selling_partner_id,
      c.region,
      c.account_type,
      c.status,
      (c.authorized_at ?? '').slice(0, 10),
      (c.reauthorize_by ?? '').slice(0, 10),
    ]),
  ]
}

export function printConnection(c: ConnectionJson): void {
  printTable(Object.entries(c).map(([key, value]) => [`${key}:`, value === null ? '—' : String(value)]))
}
