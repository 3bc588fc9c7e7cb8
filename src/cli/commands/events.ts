/**
 * The audit log and the webhook outbox from the command line:
 *
 *     sp-connect events list [--connection ID] [--type T] [--limit N] [--json] [--data DIR]
 *     sp-connect events show <id> [--json] [--data DIR]
 *     sp-connect webhooks deliveries [--status pending|delivered|failed] [--event ID] [--limit N] [--json] [--data DIR]
 *     sp-connect webhooks verify --secret-env VAR --signature HEADER [--tolerance SECONDS]   (body on stdin)
 *
 * `webhooks verify` helps application developers test their receiver: it checks a captured body and its
 * `sp-connect-signature` header with the secret named by an environment variable (never an argument, so the
 * secret stays out of shell history and process lists).
 */
import type { Command } from 'commander'
import { EVENT_TYPES } from '../../core/events/events.ts'
import {
  DEFAULT_TOLERANCE_SECONDS,
  parseSignatureHeader,
  verifyWebhook,
} from '../../core/events/signature.ts'
import { SpConnectError } from '../../domain/errors.ts'
import { type DeliveryJson, deliveryJson } from '../../server/routes/events-api.ts'
import { eventJson } from '../../server/serialize.ts'
import { DELIVERY_STATUSES, type DeliveryStatus } from '../../store/store.ts'
import { type TargetOptions, withRuntime } from '../context.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson, printOutput, printTable } from '../output.ts'

/** Largest webhook body `webhooks verify` reads from stdin. */
const MAX_BODY_BYTES = 1024 * 1024

type EventJson = ReturnType<typeof eventJson>

export function registerEventCommands(program: Command): void {
  const events = program.command('events').description('the audit log of lifecycle events')

  events
    .command('list')
    .description('list events, newest first')
    .option('--connection <id>', 'only events of this connection')
    .option('--type <type>', `only this type (${EVENT_TYPES.join(', ')})`)
    .option('--limit <n>', 'at most this many (1-1000)', '100')
    .option('--json', 'print JSON')
    .option('--data <dir>', 'dev data folder')
    .action(
      async (opts: TargetOptions & { connection?: string; type?: string; limit: string; json?: boolean }) => {
        const type = opts.type
        if (type !== undefined && !(EVENT_TYPES as readonly string[]).includes(type)) {
          throw new SpConnectError('invalid_request', {
            detail: `--type must be one of ${EVENT_TYPES.join(', ')}`,
          })
        }
        const limit = parseLimit(opts.limit)
        await withRuntime(opts, async ({ store }) => {
          const rows = await store.listEvents({
            limit,
            ...(opts.connection ? { connectionId: opts.connection } : {}),
            ...(type ? { type } : {}),
          })
          const json = rows.map(eventJson)
          if (opts.json) printJson(json)
          else if (json.length === 0) process.stdout.write('No events.\n')
          else printTable(eventRows(json))
        })
      },
    )

  events
    .command('show <id>')
    .description('show one event and its webhook deliveries')
    .option('--json', 'print JSON')
    .option('--data <dir>', 'dev data folder')
    .action(async (id: string, opts: TargetOptions & { json?: boolean }) => {
      await withRuntime(opts, async ({ store }) => {
        const event = await store.getEvent(id)
        if (!event) throw new SpConnectError('not_found')
        const deliveries = (await store.listDeliveries({ eventId: event.id, limit: 1000 })).map(deliveryJson)
        const json = eventJson(event)
        if (opts.json) {
          printJson({ ...json, deliveries })
          return
        }
        printTable([
          ['id:', json.id],
          ['type:', json.type],
          ['connection_id:', json.connection_id ?? '—'],
          ['created_at:', json.created_at ?? '—'],
          ['data:', JSON.stringify(json.data)],
        ])
        process.stdout.write('\n')
        if (deliveries.length === 0) process.stdout.write('No webhook deliveries.\n')
        else printTable(deliveryRows(deliveries))
      })
    })

  const webhooks = program.command('webhooks').description('webhook deliveries and signatures')

  webhooks
    .command('deliveries')
    .description('list webhook deliveries')
    .option('--status <status>', `only this status (${DELIVERY_STATUSES.join(', ')})`)
    .option('--event <id>', 'only deliveries of this event')
    .option('--limit <n>', 'at most this many (1-1000)', '100')
    .option('--json', 'print JSON')
    .option('--data <dir>', 'dev data folder')
    .action(
      async (opts: TargetOptions & { status?: string; event?: string; limit: string; json?: boolean }) => {
        const status = opts.status
        if (status !== undefined && !isDeliveryStatus(status)) {
          throw new SpConnectError('invalid_request', {
            detail: `--status must be one of ${DELIVERY_STATUSES.join(', ')}`,
          })
        }
        const limit = parseLimit(opts.limit)
        await withRuntime(opts, async ({ store }) => {
          const rows = await store.listDeliveries({
            limit,
            ...(status ? { status } : {}),
            ...(opts.event ? { eventId: opts.event } : {}),
          })
          const json = rows.map(deliveryJson)
          if (opts.json) printJson(json)
          else if (json.length === 0) process.stdout.write('No webhook deliveries.\n')
          else printTable(deliveryRows(json))
        })
      },
    )

  webhooks
    .command('verify')
    .description('check a webhook body (stdin, exact bytes) against its sp-connect-signature header')
    .requiredOption('--secret-env <var>', 'environment variable holding the webhook secret')
    .requiredOption('--signature <header>', 'the sp-connect-signature header value (t=…,v1=…)')
    .option(
      '--tolerance <seconds>',
      'largest accepted age of the timestamp',
      String(DEFAULT_TOLERANCE_SECONDS),
    )
    .option('--json', 'print {valid, reason} as JSON')
    .action(async (opts: { secretEnv: string; signature: string; tolerance: string; json?: boolean }) => {
      const secret = process.env[opts.secretEnv]
      if (!secret) {
        throw new SpConnectError('invalid_request', {
          detail: '--secret-env names an unset or empty variable',
        })
      }
      if (!/^\d{1,10}$/.test(opts.tolerance)) {
        throw new SpConnectError('invalid_request', {
          detail: '--tolerance must be a whole number of seconds',
        })
      }
      const tolerance = Number(opts.tolerance)
      const body = await readBody()
      const now = Math.floor(Date.now() / 1000)
      if (verifyWebhook(secret, opts.signature, body, now, tolerance)) {
        printOutput(opts.json, { valid: true, reason: null }, () => process.stdout.write('valid signature\n'))
        return
      }
      // Say why, so a developer can tell a wrong secret or altered body from a stale capture.
      const parsed = parseSignatureHeader(opts.signature)
      const reason = !parsed
        ? 'the header is not t=<seconds>,v1=<64 hex digits>[,v1=…]'
        : Math.abs(now - parsed.timestamp) > tolerance
          ? `the timestamp is ${now - parsed.timestamp}s from now, outside the tolerance of ${tolerance}s`
          : 'no v1 signature matches this body and secret (is the body byte-for-byte what was received?)'
      printOutput(opts.json, { valid: false, reason }, () =>
        process.stderr.write(`invalid signature: ${reason}\n`),
      )
      process.exitCode = EXIT.failure
    })
}

function isDeliveryStatus(value: string): value is DeliveryStatus {
  return (DELIVERY_STATUSES as readonly string[]).includes(value)
}

function parseLimit(value: string): number {
  const limit = Number(value)
  if (!/^\d{1,4}$/.test(value) || limit < 1 || limit > 1000) {
    throw new SpConnectError('invalid_request', { detail: '--limit must be a whole number from 1 to 1000' })
  }
  return limit
}

function eventRows(events: readonly EventJson[]): string[][] {
  return [
    ['ID', 'TYPE', 'CONNECTION', 'CREATED'],
    ...events.map((e) => [e.id, e.type, e.connection_id ?? '—', e.created_at ?? '']),
  ]
}

function deliveryRows(deliveries: readonly DeliveryJson[]): string[][] {
  return [
    ['ID', 'EVENT', 'STATUS', 'ATTEMPTS', 'LAST', 'NEXT ATTEMPT', 'DELIVERED', 'URL'],
    ...deliveries.map((d) => [
      d.id,
      d.event_id,
      d.status,
      String(d.attempts),
      d.last_status_code !== null ? String(d.last_status_code) : (d.last_error ?? '—'),
      d.next_attempt_at ?? '—',
      d.delivered_at ?? '—',
      d.url,
    ]),
  ]
}

/** The body exactly as given on stdin (no trimming: the signature covers every byte). */
async function readBody(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Paste the webhook body, then press Ctrl-D:\n')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    size += buffer.length
    if (size > MAX_BODY_BYTES)
      throw new SpConnectError('invalid_request', { detail: 'stdin is larger than 1 MiB' })
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
