/**
 * `sp-connect operators …`: the people who may sign in to the operator console
 * (docs/decisions/0009-operator-console.md).
 *
 * - `create --email E` reads the password from stdin (piped, or typed at a terminal without echo), never from
 *   argv, and refuses passwords under 12 characters.
 * - `list [--json]` prints emails and times, never hashes.
 * - `delete <email>` removes the account and ends its console sessions.
 */
import type { Command } from 'commander'
import { createOperator, deleteOperator } from '../../core/access/operators.ts'
import { MIN_PASSWORD_LENGTH } from '../../core/access/passwords.ts'
import { SpConnectError } from '../../domain/errors.ts'
import { type TargetOptions, withRuntime } from '../context.ts'
import { printJson, printOutput, printTable } from '../output.ts'

const MAX_PASSWORD_INPUT_BYTES = 4096

/** Reads a password: at a terminal without echo up to Enter, otherwise all of stdin minus one line ending. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin
  if (stdin.isTTY) {
    process.stderr.write(`Password (at least ${MIN_PASSWORD_LENGTH} characters): `)
    stdin.setRawMode(true)
    stdin.setEncoding('utf8')
    try {
      let typed = ''
      for await (const chunk of stdin) {
        for (const ch of String(chunk)) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            process.stderr.write('\n')
            return typed
          }
          if (ch === '\u0003') throw new SpConnectError('invalid_request', { detail: 'cancelled' })
          if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('')
          else typed += ch
          if (typed.length > MAX_PASSWORD_INPUT_BYTES)
            throw new SpConnectError('invalid_request', { detail: 'the password is too long' })
        }
      }
      return typed
    } finally {
      stdin.setRawMode(false)
      stdin.pause()
    }
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    size += buffer.length
    if (size > MAX_PASSWORD_INPUT_BYTES)
      throw new SpConnectError('invalid_request', { detail: 'the password is too long' })
    chunks.push(buffer)
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}

export function registerOperatorCommands(program: Command): void {
  const operators = program
    .command('operators')
    .description('operator accounts for the console (the dashboard): create, list, delete')

  operators
    .command('create')
    .description('create an operator; the password is read from stdin')
    .requiredOption('--email <email>', "the operator's email (their sign-in name)")
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print {email, created_at} as JSON')
    .action(async (opts: TargetOptions & { email: string; json?: boolean }) => {
      const password = await readPassword()
      await withRuntime(opts, async ({ store, deps, events }) => {
        const account = await createOperator(store, deps, events, { email: opts.email, password })
        printOutput(
          opts.json,
          { email: account.email, created_at: new Date(account.createdAt).toISOString() },
          () => process.stdout.write(`Created operator ${account.email}.\n`),
        )
      })
    })

  operators
    .command('list')
    .description('list operators')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print JSON')
    .action(async (opts: TargetOptions & { json?: boolean }) => {
      await withRuntime(opts, async ({ store }) => {
        const accounts = await store.operators.listAccounts()
        const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
        const rows = accounts.map((a) => ({
          email: a.email,
          created_at: iso(a.createdAt),
          last_sign_in_at: iso(a.lastSignInAt),
        }))
        if (opts.json) printJson(rows)
        else if (rows.length === 0) process.stdout.write('No operators.\n')
        else
          printTable([
            ['EMAIL', 'CREATED', 'LAST SIGN-IN'],
            ...rows.map((r) => [r.email, r.created_at ?? '', r.last_sign_in_at ?? '—']),
          ])
      })
    })

  operators
    .command('delete <email>')
    .description('delete an operator and end their console sessions')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print {email, deleted} as JSON')
    .action(async (email: string, opts: TargetOptions & { json?: boolean }) => {
      await withRuntime(opts, async ({ store, events }) => {
        await deleteOperator(store, events, email)
        const normalized = email.trim().toLowerCase()
        printOutput(opts.json, { email: normalized, deleted: true }, () =>
          process.stdout.write(`Deleted operator ${normalized}.\n`),
        )
      })
    })
}
