/**
 * `sp-connect api-keys create|list|revoke`: API keys kept (hashed) in the database, with scopes and tenants.
 *
 * `create` prints the key once, alone on the last line of stdout (after the key's details, or after its JSON
 * with `--json`), so a script can take it with `tail -n 1`. At least one `--scope` is required: there is no
 * default, so nobody gets a broader key than they asked for. Without `--tenant` the key sees every tenant.
 * `list` never shows a key or its hash.
 */
import type { Command } from 'commander'
import { apiKeyJson, createApiKey, revokeApiKey } from '../../core/access/api-keys.ts'
import { SCOPES } from '../../core/access/principal.ts'
import { isApiKeyId } from '../../core/ids.ts'
import { SpConnectError } from '../../domain/errors.ts'
import { type TargetOptions, withRuntime } from '../context.ts'
import { printJson, printOutput, printTable } from '../output.ts'

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

export function registerApiKeyCommands(program: Command): void {
  const apiKeys = program
    .command('api-keys')
    .description('create, list and revoke API keys (hashed in the database, with scopes and tenants)')

  apiKeys
    .command('create')
    .description('create an API key; it is printed once, alone on the last line')
    .requiredOption('--name <name>', 'a name to recognise the key by')
    .option(
      '--scope <scope>',
      `a scope to grant, repeatable (${SCOPES.join(', ')}); at least one`,
      collect,
      [],
    )
    .option('--tenant <id>', 'a tenant the key may see, repeatable; none: every tenant', collect, [])
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print the key details as JSON (the key itself still alone on the last line)')
    .action(
      async (opts: TargetOptions & { name: string; scope: string[]; tenant: string[]; json?: boolean }) => {
        await withRuntime(opts, async ({ store, deps, events }) => {
          const { record, key } = await createApiKey(store, deps, events, {
            name: opts.name,
            scopes: opts.scope,
            tenants: opts.tenant.length === 0 ? null : opts.tenant,
            createdBy: 'cli',
          })
          const json = apiKeyJson(record)
          if (opts.json) printJson(json)
          else {
            process.stdout.write(
              [
                `Created API key ${json.id} (${json.name})`,
                `  scopes:  ${json.scopes.join(', ')}`,
                `  tenants: ${json.tenants === null ? 'all' : json.tenants.join(', ')}`,
                'The key is shown only this once; store it now:',
                '',
              ].join('\n'),
            )
          }
          process.stdout.write(`${key}\n`)
        })
      },
    )

  apiKeys
    .command('list')
    .description('list API keys (never the keys themselves)')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print JSON')
    .action(async (opts: TargetOptions & { json?: boolean }) => {
      await withRuntime(opts, async ({ store }) => {
        const keys = (await store.apiKeys.list()).map(apiKeyJson)
        if (opts.json) printJson(keys)
        else if (keys.length === 0) process.stdout.write('No API keys.\n')
        else {
          printTable([
            ['ID', 'NAME', 'SCOPES', 'TENANTS', 'CREATED', 'LAST USED', 'REVOKED'],
            ...keys.map((k) => [
              k.id,
              k.name,
              k.scopes.join(','),
              k.tenants === null ? 'all' : k.tenants.join(','),
              (k.created_at ?? '').slice(0, 19),
              (k.last_used_at ?? '—').slice(0, 19),
              (k.revoked_at ?? '—').slice(0, 19),
            ]),
          ])
        }
      })
    })

  apiKeys
    .command('revoke <id>')
    .description('revoke an API key: from then on it is refused')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print the revoked key (never the key itself) as JSON')
    .action(async (id: string, opts: TargetOptions & { json?: boolean }) => {
      if (!isApiKeyId(id))
        throw new SpConnectError('invalid_request', { detail: 'not an API key id (key_…)' })
      await withRuntime(opts, async ({ store, deps, events }) => {
        const revoked = await revokeApiKey(store, deps, events, id, 'cli')
        if (!revoked) throw new SpConnectError('not_found')
        printOutput(opts.json, apiKeyJson(revoked), () =>
          process.stdout.write(`Revoked ${revoked.id} (${revoked.name}).\n`),
        )
      })
    })
}
