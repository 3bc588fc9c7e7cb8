import type { Command } from 'commander'
import { SpConnectError } from '../../domain/errors.ts'
import { isAccountType, isRegion } from '../../domain/regions.ts'
import { CONNECTION_STATUSES, type ConnectionStatus } from '../../store/store.ts'

function isConnectionStatus(value: string): value is ConnectionStatus {
  return (CONNECTION_STATUSES as readonly string[]).includes(value)
}

import { connectionJson } from '../../server/serialize.ts'
import { type TargetOptions, withRuntime } from '../context.ts'
import { connectionRows, printConnection, printJson, printOutput, printTable } from '../output.ts'
import { readStdin } from '../stdin.ts'

export function registerConnectionCommands(program: Command): void {
  const connections = program.command('connections').description('list, inspect, add and revoke connections')

  connections
    .command('list')
    .description('list connections')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print JSON')
    .option('--tenant <id>', 'only this tenant')
    .option('--status <status>', `only this status (${CONNECTION_STATUSES.join(', ')})`)
    .action(async (opts: TargetOptions & { json?: boolean; tenant?: string; status?: string }) => {
      const status = opts.status
      if (status !== undefined && !isConnectionStatus(status)) {
        throw new SpConnectError('invalid_request', {
          detail: `--status must be one of ${CONNECTION_STATUSES.join(', ')}`,
        })
      }
      await withRuntime(opts, async ({ store }) => {
        const rows = await store.listConnections({
          limit: 1000,
          ...(opts.tenant ? { tenantId: opts.tenant } : {}),
          ...(status ? { status } : {}),
        })
        const json = rows.map(connectionJson)
        if (opts.json) printJson(json)
        else if (json.length === 0) process.stdout.write('No connections.\n')
        else printTable(connectionRows(json))
      })
    })

  connections
    .command('show <id>')
    .description('show one connection')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: TargetOptions & { json?: boolean }) => {
      await withRuntime(opts, async ({ store }) => {
        const row = await store.getConnection(id)
        if (!row) throw new SpConnectError('connection_not_found')
        if (opts.json) printJson(connectionJson(row))
        else printConnection(connectionJson(row))
      })
    })

  connections
    .command('revoke <id>')
    .description('disconnect a connection: its tokens are deleted')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print the disconnected connection as JSON')
    .action(async (id: string, opts: TargetOptions & { json?: boolean }) => {
      await withRuntime(opts, async ({ store, deps, events }) => {
        const row = await store.disconnectConnection(id, deps.now())
        if (!row) throw new SpConnectError('connection_not_found')
        await events.record('connection.disconnected', row.id, { by: 'cli' })
        printOutput(opts.json, connectionJson(row), () =>
          process.stdout.write(`Disconnected ${row.id} (${row.sellingPartnerId}); its tokens are deleted.\n`),
        )
      })
    })

  connections
    .command('add')
    .description('add a connection from a refresh token read on stdin (self-authorization, migrations)')
    .requiredOption('--selling-partner-id <id>', 'the selling partner id')
    .requiredOption('--region <region>', 'na, eu or fe')
    .option('--type <type>', 'seller or vendor', 'seller')
    .option('--tenant <id>', 'your own user or organisation id')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print JSON')
    .action(
      async (
        opts: TargetOptions & {
          sellingPartnerId: string
          region: string
          type: string
          tenant?: string
          json?: boolean
        },
      ) => {
        const { region, type } = opts
        if (!isRegion(region))
          throw new SpConnectError('invalid_request', { detail: '--region must be na, eu or fe' })
        if (!isAccountType(type))
          throw new SpConnectError('invalid_request', { detail: '--type must be seller or vendor' })
        const refreshToken = (await readStdin()).trim()
        if (!/^Atzr\|[\x21-\x7e]{1,2043}$/.test(refreshToken)) {
          throw new SpConnectError('invalid_request', {
            detail: 'stdin must hold one LWA refresh token (Atzr|…, at most 2048 bytes)',
          })
        }
        await withRuntime(opts, async ({ flows }) => {
          const { connection, outcome } = await flows.addVerifiedRefreshToken({
            sellingPartnerId: opts.sellingPartnerId,
            region,
            accountType: type,
            tenantId: opts.tenant ?? null,
            refreshToken,
          })
          if (opts.json) printJson(connectionJson(connection))
          else process.stdout.write(`${outcome === 'created' ? 'Added' : 'Re-authorized'} ${connection.id}\n`)
        })
      },
    )
}
