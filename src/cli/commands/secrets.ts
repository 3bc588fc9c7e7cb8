/**
 * `sp-connect secrets rotate` and `sp-connect secrets status`: the application's LWA client secrets. Nothing
 * here ever prints a secret value (see docs/secret-rotation.md).
 */
import type { Command } from 'commander'
import type { ClientSecretsStatus } from '../../core/secrets/client-secrets.ts'
import { rotateClientSecret } from '../../core/secrets/rotation.ts'
import { type TargetOptions, withRuntime } from '../context.ts'
import { printJson, printOutput, printTable } from '../output.ts'

export function registerSecretCommands(program: Command): void {
  const secrets = program.command('secrets').description("rotate and inspect the app's LWA client secret")

  secrets
    .command('rotate')
    .description('ask Amazon for a new LWA client secret (it arrives as a notification)')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print {accepted, request_id} as JSON')
    .action(async (opts: TargetOptions & { json?: boolean }) => {
      await withRuntime(opts, async ({ config, lwa, deps }) => {
        const result = await rotateClientSecret(
          { lwa, spapiUrlTemplate: config.amazon.spapiUrlTemplate },
          deps,
        )
        printOutput(opts.json, { accepted: true, request_id: result.requestId ?? null }, () =>
          process.stdout.write(
            [
              `Amazon accepted the rotation request${result.requestId ? ` (request id ${result.requestId})` : ''}.`,
              'It sends the new client secret only as an APPLICATION_OAUTH_CLIENT_NEW_SECRET notification to the',
              "app's SQS queue; forward it to POST /v1/notifications and sp-connect switches to the new secret.",
              'The current secret keeps working until the time given in that notification (about 7 days).',
              'Check with: sp-connect secrets status',
              '',
            ].join('\n'),
          ),
        )
      })
    })

  secrets
    .command('status')
    .description('list the client secrets by id, state and times (never their values)')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print JSON')
    .action(async (opts: TargetOptions & { json?: boolean }) => {
      await withRuntime(opts, async ({ secrets: clientSecrets }) => {
        const status = await clientSecrets.status()
        if (opts.json) printJson(statusJson(status))
        else printStatus(status)
      })
    })
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString()
}

/** The JSON shape of `secrets status --json` (snake_case like the HTTP API). */
function statusJson(status: ClientSecretsStatus) {
  return {
    client_id: status.clientId,
    secrets: status.secrets.map((s) => ({
      id: s.id,
      source: s.source,
      state: s.state,
      created_at: iso(s.createdAt),
      expires_at: iso(s.expiresAt),
      rank: s.rank,
    })),
    last_rotation_at: iso(status.lastRotationAt),
    last_expiry_warning:
      status.lastExpiryWarning === null
        ? null
        : {
            expires_at: status.lastExpiryWarning.expiresAt,
            reason: status.lastExpiryWarning.reason,
            received_at: iso(status.lastExpiryWarning.receivedAt),
          },
  }
}

function printStatus(status: ClientSecretsStatus): void {
  process.stdout.write(`Client id: ${status.clientId}\n`)
  printTable([
    ['ID', 'SOURCE', 'STATE', 'TRIED', 'CREATED', 'EXPIRES'],
    ...status.secrets.map((s) => [
      s.id,
      s.source,
      s.state,
      s.rank === null ? '—' : String(s.rank),
      iso(s.createdAt) ?? '—',
      iso(s.expiresAt) ?? (s.source === 'configured' ? 'unknown' : '—'),
    ]),
  ])
  if (status.lastRotationAt !== null) {
    process.stdout.write(`Last new secret received: ${iso(status.lastRotationAt)}\n`)
  }
  const warning = status.lastExpiryWarning
  // A warning older than the last rotation was about a secret that has been replaced already
  if (warning !== null && (status.lastRotationAt === null || warning.receivedAt > status.lastRotationAt)) {
    process.stdout.write(
      `Amazon warned (${iso(warning.receivedAt)}) that the client secret expires at ${warning.expiresAt ?? 'an unknown time'}` +
        `${warning.reason ? ` (${warning.reason})` : ''}: run \`sp-connect secrets rotate\`.\n`,
    )
  }
}
