import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { nextPage } from '../../core/spapi/pagination.ts'
import { SpConnectError } from '../../domain/errors.ts'
import { type TargetOptions, withRuntime } from '../context.ts'
import { printJson, printOutput } from '../output.ts'

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
      "call SP-API with a connection's token (throttling, retries and Restricted Data Tokens handled) and print the body, e.g. call con_… GET /sellers/v1/marketplaceParticipations",
    )
    .option('--data <dir>', 'dev data folder')
    .option('--query <name=value>', 'a query parameter, repeatable', collect, [])
    .option('--body <json|@file>', 'request body: JSON text, or @path to read it from a file')
    .option('--all', 'follow nextToken pagination and print every page')
    .option('--json', 'print {status, request_id, rate_limit, body} (an array of them with --all)')
    .action(
      async (
        id: string,
        method: string,
        path: string,
        opts: TargetOptions & { body?: string; query: string[]; all?: boolean; json?: boolean },
      ) => {
        const body = opts.body === undefined ? undefined : readBody(opts.body)
        let query = parseQuery(opts.query)
        await withRuntime(opts, async ({ spapi }) => {
          const pages: {
            status: number
            request_id: string | null
            rate_limit: string | null
            body: unknown
          }[] = []
          for (let page = 0; page < MAX_PAGES; page++) {
            const response = await spapi.call(id, { method, path, query, body })
            const text = await response.text()
            const entry = {
              status: response.status,
              request_id: response.requestId,
              rate_limit: response.headers.get('x-amzn-ratelimit-limit'),
              body: parseOrText(text),
            }
            pages.push(entry)
            if (!opts.json) process.stdout.write(`${pretty(text)}\n`)
            if (response.status >= 400) {
              process.stderr.write(
                `SP-API answered HTTP ${response.status} (request id ${response.requestId ?? 'unknown'})\n`,
              )
              process.exitCode = 1
              break
            }
            const next = opts.all ? nextPage(path.split('?')[0] ?? path, query, text) : undefined
            if (!next) break
            query = next.query
          }
          if (opts.json) printJson(opts.all ? pages : pages[0])
        })
      },
    )
}

/** Pages `--all` follows at most: a guard against a token that never ends. */
const MAX_PAGES = 1000

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

function parseQuery(pairs: readonly string[]): URLSearchParams {
  const query = new URLSearchParams()
  for (const pair of pairs) {
    const at = pair.indexOf('=')
    if (at <= 0) throw new SpConnectError('invalid_request', { detail: '--query takes name=value' })
    query.append(pair.slice(0, at), pair.slice(at + 1))
  }
  return query
}

/** `--body`: JSON text, or `@file` read from disk (also JSON). */
function readBody(value: string): string {
  let text = value
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8')
    } catch {
      throw new SpConnectError('invalid_request', { detail: '--body @file cannot be read' })
    }
  }
  try {
    JSON.parse(text)
  } catch {
    throw new SpConnectError('invalid_request', { detail: '--body must be JSON' })
  }
  return text
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2)
  } catch {
    // Not JSON: print as received.
    return text
  }
}
