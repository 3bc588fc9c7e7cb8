import type { Command } from 'commander'
import { SpConnectError } from '../../core/errors.ts'
import { type TargetOptions, withRuntime } from '../context.ts'
import { printOutput } from '../output.ts'

export function registerTokenCommands(program: Command): void {
  program
    .command('token [id]')
    .description('print a valid access token (refreshing it if needed); only the token goes to stdout')
    .option(
      '--grantless <scope>',
      'a grantless token for this scope instead, e.g. sellingpartnerapi::notifications',
    )
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print {access_token, token_type, expires_at} as JSON')
    .action(async (id: string | undefined, opts: TargetOptions & { grantless?: string; json?: boolean }) => {
      if ((id === undefined) === (opts.grantless === undefined)) {
        throw new SpConnectError('invalid_request', {
          detail: 'give a connection id or --grantless <scope>, not both',
        })
      }
      await withRuntime(opts, async ({ tokens, grantless }) => {
        const token = opts.grantless
          ? await grantless.getToken(opts.grantless)
          : await tokens.getAccessToken(id ?? '')
        printOutput(
          opts.json,
          {
            access_token: token.accessToken,
            token_type: 'bearer',
            expires_at: new Date(token.expiresAt).toISOString(),
          },
          () => process.stdout.write(`${token.accessToken}\n`),
        )
      })
    })

  program
    .command('call <id> <method> <path>')
    .description(
      "call SP-API with a connection's token and print the response, e.g. call con_… GET /sellers/v1/marketplaceParticipations",
    )
    .option('--data <dir>', 'dev data folder')
    .option('--body <json>', 'request body (JSON)')
    .action(async (id: string, method: string, path: string, opts: TargetOptions & { body?: string }) => {
      if (opts.body !== undefined) {
        try {
          JSON.parse(opts.body)
        } catch {
          throw new SpConnectError('invalid_request', { detail: '--body must be JSON' })
        }
      }
      await withRuntime(opts, async ({ spapi }) => {
        const response = await spapi.call(id, { method, path, body: opts.body })
        let printed = response.body
        try {
          printed = JSON.stringify(JSON.parse(response.body), null, 2)
        } catch {
          // Not JSON: print as received.
        }
        process.stdout.write(`${printed}\n`)
        if (response.status >= 400) {
          process.stderr.write(
            `SP-API answered HTTP ${response.status} (request id ${response.requestId ?? 'unknown'})\n`,
          )
          process.exitCode = 1
        }
      })
    })
}
