/**
 * `sp-connect doctor [--json]`: checks the production configuration `serve` would read (the same environment
 * variables, through `loadConfigFromEnv`) against Amazon's rules, opens the database without migrating it,
 * and proves the LWA client id and secret with one grantless call. One line per check (ok, warn or fail),
 * each failure with how to fix it; never a secret value.
 *
 * Exit: 0 when nothing fails (warnings included), 78 when the configuration is wrong (a bad variable, or
 * Amazon rejecting the credentials), 69 when the configuration looks right but the database or Amazon cannot
 * be reached.
 */
import { existsSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { Command } from 'commander'
import { basePathProblem, ConfigError, loadConfigFromEnv, parseDatabaseUrl } from '../../config.ts'
import { storedKeyIdsMissingFrom } from '../../core/crypto/key-health.ts'
import { Keyring, parseKeyringSpec } from '../../core/crypto/keyring.ts'
import { type Deps, defaultDeps } from '../../core/deps.ts'
import { LwaClient } from '../../core/lwa/client.ts'
import { exitCodeOf, isSpConnectError } from '../../domain/errors.ts'
import { openStore } from '../../store/open.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson } from '../output.ts'

type CheckStatus = 'ok' | 'warn' | 'fail'

/** One line of the report. `cause` says which exit code a failure leads to. */
interface DoctorCheck {
  readonly name: string
  readonly status: CheckStatus
  readonly message: string
  readonly fix?: string
  readonly cause?: 'config' | 'unavailable'
}

const APP_ID = /^amzn1\.(sellerapps\.app|sp\.solution)\.[A-Za-z0-9-]+$/
const CLIENT_ID = /^amzn1\.application-oa2-client\.[A-Za-z0-9]+$/
/** The grantless scope every SP-API app may ask for: a cheap proof that Amazon accepts the credentials. */
const PROBE_SCOPE = 'sellingpartnerapi::notifications'
const PROBE_DEADLINE_MS = 15_000
const DATABASE_TIMEOUT_MS = 15_000

type Env = Readonly<Record<string, string | undefined>>

/** The configuration problems (`ConfigError.problems`) not yet claimed by a check; each names its variable. */
class Problems {
  readonly #left: string[]
  constructor(problems: readonly string[]) {
    this.#left = [...problems]
  }
  take(...variables: string[]): string[] {
    const mine = this.#left.filter((p) => variables.some((v) => p.startsWith(`${v} `) || p === v))
    for (const p of mine) this.#left.splice(this.#left.indexOf(p), 1)
    return mine
  }
  rest(): string[] {
    return this.#left.splice(0)
  }
}

function fail(name: string, message: string, fix: string, cause: 'config' | 'unavailable' = 'config') {
  return { name, status: 'fail', message, fix, cause } as const satisfies DoctorCheck
}

function parseUrl(value: string | undefined): URL | undefined {
  if (value === undefined) return undefined
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/** Runs every check; the LWA and database checks talk to the outside world. */
async function runDoctor(env: Env, deps: Deps = defaultDeps()): Promise<DoctorCheck[]> {
  let problems: readonly string[] = []
  try {
    loadConfigFromEnv(env)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    problems = error.problems
  }
  const left = new Problems(problems)
  const checks: DoctorCheck[] = []
  const insecure = ['1', 'true'].includes(env['SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK'] ?? '')
  const testOnly =
    'plain http to loopback, allowed by SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK: for tests only'
  const httpsFix =
    'Amazon accepts only https:// here: serve the public URL over TLS and unset SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK.'

  // Public URL
  const publicProblems = left.take('SP_CONNECT_PUBLIC_URL')
  const publicUrl = publicProblems.length === 0 ? parseUrl(env['SP_CONNECT_PUBLIC_URL']) : undefined
  if (!publicUrl)
    checks.push(
      fail(
        'public-url',
        publicProblems.join('; ') || 'SP_CONNECT_PUBLIC_URL is required',
        'Set SP_CONNECT_PUBLIC_URL to the https:// address sellers reach this service on, e.g. https://connect.example.com.',
      ),
    )
  else if (publicUrl.protocol === 'http:')
    checks.push({
      name: 'public-url',
      status: 'warn',
      message: `${publicUrl.origin}: ${testOnly}`,
      fix: httpsFix,
    })
  else checks.push({ name: 'public-url', status: 'ok', message: `${publicUrl.origin}` })
  // The redirect and login URIs live under the base path (docs/decisions/0012-base-path.md).
  const basePath = env['SP_CONNECT_BASE_PATH'] ?? ''
  const publicBase =
    publicUrl && (basePath === '' || basePathProblem(basePath) === undefined)
      ? `${publicUrl.origin}${basePath}`
      : undefined

  // Redirect URI: Amazon sends the seller back there, so it must be https and reach this service.
  const redirectProblems = left.take('SP_CONNECT_REDIRECT_URI')
  const redirectFix = `Set SP_CONNECT_REDIRECT_URI to ${publicBase ?? 'the public URL'}/callback (or leave it unset) and register exactly that as an OAuth Redirect URI of the app in Developer Central.`
  if (redirectProblems.length > 0) checks.push(fail('redirect-uri', redirectProblems.join('; '), redirectFix))
  else if (!publicUrl || publicBase === undefined)
    checks.push({
      name: 'redirect-uri',
      status: 'warn',
      message: 'not checked: fix SP_CONNECT_PUBLIC_URL first',
    })
  else {
    const redirect = parseUrl(env['SP_CONNECT_REDIRECT_URI'] ?? `${publicBase}/callback`)
    if (!redirect) checks.push(fail('redirect-uri', 'SP_CONNECT_REDIRECT_URI is not a URL', redirectFix))
    else if (redirect.origin !== publicUrl.origin)
      checks.push(
        fail(
          'redirect-uri',
          `SP_CONNECT_REDIRECT_URI is on ${redirect.origin}, not the public origin ${publicUrl.origin}: the seller's browser would not come back to this service`,
          redirectFix,
        ),
      )
    else if (redirect.pathname !== `${basePath}/callback`)
      checks.push({
        name: 'redirect-uri',
        status: 'warn',
        message: `${redirect.href} is not the service's /callback route; it works only if a proxy maps it there`,
        fix: redirectFix,
      })
    else if (redirect.protocol === 'http:')
      checks.push({
        name: 'redirect-uri',
        status: 'warn',
        message: `${redirect.href}: ${testOnly}`,
        fix: httpsFix,
      })
    else
      checks.push({
        name: 'redirect-uri',
        status: 'ok',
        message: `${redirect.href} (register it as the app's OAuth Redirect URI)`,
      })
  }

  // Login URI: derived from the public URL.
  if (publicBase !== undefined && publicUrl) {
    const login = `${publicBase}/login`
    if (publicUrl.protocol === 'http:')
      checks.push({ name: 'login-uri', status: 'warn', message: `${login}: ${testOnly}`, fix: httpsFix })
    else
      checks.push({
        name: 'login-uri',
        status: 'ok',
        message: `${login} (register it as the app's Login URI)`,
      })
  } else
    checks.push({
      name: 'login-uri',
      status: 'warn',
      message: 'not checked: fix SP_CONNECT_PUBLIC_URL first',
    })

  // App id and client id: the two are easy to swap, and Amazon's errors do not say which is wrong.
  const appId = env['SP_CONNECT_APP_ID']
  const clientId = env['SP_CONNECT_LWA_CLIENT_ID']
  const appProblems = left.take('SP_CONNECT_APP_ID', 'SP_CONNECT_APP_STATUS')
  const appFix =
    'SP_CONNECT_APP_ID is the app id shown in Developer Central (amzn1.sp.solution.… or amzn1.sellerapps.app.…); the LWA client id (amzn1.application-oa2-client.…) goes in SP_CONNECT_LWA_CLIENT_ID.'
  if (appId !== undefined && CLIENT_ID.test(appId))
    checks.push(fail('app-id', 'SP_CONNECT_APP_ID holds an LWA client id, not an app id', appFix))
  else if (appProblems.length > 0) checks.push(fail('app-id', appProblems.join('; '), appFix))
  else
    checks.push({
      name: 'app-id',
      status: 'ok',
      message: `an SP-API app id (${env['SP_CONNECT_APP_STATUS'] === 'draft' ? 'Draft: flows send version=beta' : 'published'})`,
    })

  const clientProblems = left.take('SP_CONNECT_LWA_CLIENT_ID')
  const clientFix =
    'SP_CONNECT_LWA_CLIENT_ID is the client identifier under "LWA credentials" of the app in Developer Central (amzn1.application-oa2-client.…).'
  if (clientId !== undefined && APP_ID.test(clientId))
    checks.push(
      fail('lwa-client-id', 'SP_CONNECT_LWA_CLIENT_ID holds an app id, not an LWA client id', clientFix),
    )
  else if (clientProblems.length > 0) checks.push(fail('lwa-client-id', clientProblems.join('; '), clientFix))
  else checks.push({ name: 'lwa-client-id', status: 'ok', message: 'an LWA client id' })

  const secretProblems = left.take('SP_CONNECT_LWA_CLIENT_SECRET')
  if (secretProblems.length > 0)
    checks.push(
      fail(
        'lwa-client-secret',
        secretProblems.join('; '),
        'Set SP_CONNECT_LWA_CLIENT_SECRET to the client secret under "LWA credentials" of the app in Developer Central.',
      ),
    )
  else checks.push({ name: 'lwa-client-secret', status: 'ok', message: 'set (value not shown)' })

  // Key material: the keyring parser's rules (32 random bytes of canonical base64, unique ids).
  const keyProblems = left.take('SP_CONNECT_ENCRYPTION_KEYS')
  if (keyProblems.length > 0)
    checks.push(
      fail(
        'encryption-keys',
        keyProblems.join('; '),
        'SP_CONNECT_ENCRYPTION_KEYS is id:base64key[,older-id:base64key…], primary first; make a key with `sp-connect keys generate`, and keep every older key still in use (docs/key-rotation.md).',
      ),
    )
  else {
    const ids = (env['SP_CONNECT_ENCRYPTION_KEYS'] ?? '').split(',').map((p) => p.trim().split(':')[0])
    checks.push({
      name: 'encryption-keys',
      status: 'ok',
      message: `${ids.length} key(s), primary "${ids[0] ?? ''}"`,
    })
  }

  const apiKeyProblems = left.take('SP_CONNECT_API_KEYS')
  if (apiKeyProblems.length > 0)
    checks.push(
      fail(
        'api-keys',
        apiKeyProblems.join('; '),
        'SP_CONNECT_API_KEYS is name:key[,name:key…] with random keys of 32+ characters (e.g. openssl rand -base64 32).',
      ),
    )
  else checks.push({ name: 'api-keys', status: 'ok', message: 'set (values not shown)' })

  const signInProblems = left.take('SP_CONNECT_APP_SIGNIN_URL')
  const signInFix =
    "Set SP_CONNECT_APP_SIGNIN_URL to your app's sign-in page: Amazon's Login URI requests (Appstore authorizations, re-authorizations) are handed there."
  if (signInProblems.length > 0) checks.push(fail('app-signin-url', signInProblems.join('; '), signInFix))
  else if (!env['SP_CONNECT_APP_SIGNIN_URL'])
    checks.push({
      name: 'app-signin-url',
      status: 'warn',
      message: 'unset: Appstore authorizations and re-authorizations from Amazon will be refused',
      fix: signInFix,
    })
  else checks.push({ name: 'app-signin-url', status: 'ok', message: 'set' })

  const webhookProblems = left.take('SP_CONNECT_WEBHOOK_URLS', 'SP_CONNECT_WEBHOOK_SECRET')
  if (webhookProblems.length > 0)
    checks.push(
      fail(
        'webhooks',
        webhookProblems.join('; '),
        'SP_CONNECT_WEBHOOK_URLS is a comma-separated list of https:// URLs; SP_CONNECT_WEBHOOK_SECRET a random secret of 32+ characters.',
      ),
    )
  else {
    const count = (env['SP_CONNECT_WEBHOOK_URLS'] ?? '').split(',').filter((u) => u.trim()).length
    checks.push({
      name: 'webhooks',
      status: 'ok',
      message: count === 0 ? 'none configured' : `${count} endpoint(s), signed`,
    })
  }

  const databaseProblems = left.take(
    'DATABASE_URL',
    'SP_CONNECT_DB_POOL_SIZE',
    'SP_CONNECT_DB_STATEMENT_TIMEOUT_MS',
  )
  const tokenUrlProblems = left.take('SP_CONNECT_LWA_TOKEN_URL')

  // Everything else the configuration loader refused, so no problem goes unreported.
  const rest = left.rest()
  if (rest.length > 0)
    checks.push(
      fail('other-settings', rest.join('; '), 'Fix each variable named above (README, "Configuration").'),
    )
  else checks.push({ name: 'other-settings', status: 'ok', message: 'every other setting is valid' })

  checks.push(await checkDatabase(env, databaseProblems, env['SP_CONNECT_ENCRYPTION_KEYS'], keyProblems))

  const credentialsUsable =
    clientProblems.length === 0 &&
    secretProblems.length === 0 &&
    tokenUrlProblems.length === 0 &&
    !(clientId !== undefined && APP_ID.test(clientId))
  if (tokenUrlProblems.length > 0)
    checks.push(
      fail(
        'lwa-credentials',
        tokenUrlProblems.join('; '),
        'Leave SP_CONNECT_LWA_TOKEN_URL unset for Amazon (https://api.amazon.com/auth/o2/token).',
      ),
    )
  else if (!credentialsUsable)
    checks.push({
      name: 'lwa-credentials',
      status: 'warn',
      message: 'not tested: fix the client id and secret first',
    })
  else checks.push(await checkLwa(env, insecure, deps))
  return checks
}

async function checkDatabase(
  env: Env,
  problems: readonly string[],
  keySpec: string | undefined,
  keyProblems: readonly string[],
): Promise<DoctorCheck> {
  const fix =
    'DATABASE_URL is a SQLite file path (file:PATH) or a postgres:// URL the service can reach with its credentials.'
  if (problems.length > 0) return fail('database', problems.join('; '), fix)
  const database = parseDatabaseUrl(env['DATABASE_URL'] ?? '')
  if (database.kind === 'sqlite') {
    // Opening a missing SQLite file would create it: the doctor only looks.
    const path = resolve(database.path)
    if (!existsSync(path)) {
      const dir = dirname(path)
      if (!existsSync(dir) || !statSync(dir).isDirectory())
        return fail('database', `the folder of the SQLite file does not exist (${dir})`, fix)
      return {
        name: 'database',
        status: 'warn',
        message: `no SQLite file yet at ${path}`,
        fix: 'Run `sp-connect migrate` (or start `sp-connect serve`) to create it.',
      }
    }
  }
  const where = database.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'
  let store: Awaited<ReturnType<typeof openStore>> | undefined
  try {
    const work = (async () => {
      store = await openStore(database)
      return await store.pendingMigrations()
    })()
    const pending = await withTimeout(work, DATABASE_TIMEOUT_MS)
    if (pending.length > 0)
      return {
        name: 'database',
        status: 'warn',
        message: `${where} reachable; ${pending.length} migration(s) pending: ${pending.join(', ')}`,
        fix: 'Run `sp-connect migrate` (serve also migrates at start).',
      }
    if (store && keySpec && keyProblems.length === 0) {
      const missing = await storedKeyIdsMissingFrom(store, new Keyring(parseKeyringSpec(keySpec)))
      if (missing.length > 0)
        return fail(
          'database',
          `${where} reachable, but rows are encrypted under key id(s) the keyring lacks: ${missing.join(', ')}`,
          'Put those keys back into SP_CONNECT_ENCRYPTION_KEYS (after the primary) (docs/key-rotation.md).',
        )
    }
    return { name: 'database', status: 'ok', message: `${where} reachable, schema up to date` }
  } catch (error) {
    const code = isSpConnectError(error) ? error.code : undefined
    return fail(
      'database',
      `${where} cannot be opened or queried${code ? ` (${code})` : ''}`,
      `${fix} Check that it is running and reachable from here.`,
      code === 'database_unusable' ? 'config' : 'unavailable',
    )
  } finally {
    await (store as { close(): Promise<void> } | undefined)?.close().catch(() => undefined)
  }
}

async function checkLwa(env: Env, insecure: boolean, deps: Deps): Promise<DoctorCheck> {
  const clientId = env['SP_CONNECT_LWA_CLIENT_ID'] ?? ''
  const clientSecret = env['SP_CONNECT_LWA_CLIENT_SECRET'] ?? ''
  const tokenUrl = env['SP_CONNECT_LWA_TOKEN_URL'] ?? 'https://api.amazon.com/auth/o2/token'
  const credentialsFix =
    'Copy the client identifier and client secret from "LWA credentials" of this app in Developer Central into SP_CONNECT_LWA_CLIENT_ID and SP_CONNECT_LWA_CLIENT_SECRET (after a rotation, the newest secret).'
  try {
    const lwa = new LwaClient({ tokenUrl, credentials: () => ({ clientId, clientSecret }) }, deps)
    await lwa.clientCredentials(PROBE_SCOPE, { deadline: deps.now() + PROBE_DEADLINE_MS, maxAttempts: 1 })
    return {
      name: 'lwa-credentials',
      status: 'ok',
      message: `Amazon accepted the client id and secret (grantless ${PROBE_SCOPE})${insecure && tokenUrl.startsWith('http:') ? ' at a loopback test endpoint' : ''}`,
    }
  } catch (error) {
    const code = isSpConnectError(error) ? error.code : 'internal'
    if (code === 'lwa_invalid_client' || code === 'lwa_unauthorized_client')
      return fail(
        'lwa-credentials',
        `Amazon rejected the LWA client id and secret (${code === 'lwa_invalid_client' ? 'invalid_client' : 'unauthorized_client'})`,
        credentialsFix,
      )
    if (code === 'lwa_invalid_scope')
      return {
        name: 'lwa-credentials',
        status: 'warn',
        message: `Amazon accepted the client but refused the scope ${PROBE_SCOPE}`,
        fix: 'Check the app is an SP-API app with access to the Notifications API role.',
      }
    if (isSpConnectError(error) && exitCodeOf(error.code) === EXIT.unavailable)
      return fail(
        'lwa-credentials',
        `Amazon's token service could not be reached or failed (${code})`,
        'Check outbound https to api.amazon.com (proxy, firewall, DNS), then run doctor again.',
        'unavailable',
      )
    return fail(
      'lwa-credentials',
      `the grantless token request failed (${code})`,
      `${credentialsFix} Check SP_CONNECT_LWA_TOKEN_URL is unset or Amazon's.`,
    )
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms)
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

/** 0 when nothing failed; 78 when any failure is the configuration's; else 69. */
function doctorExitCode(checks: readonly DoctorCheck[]): number {
  const failed = checks.filter((c) => c.status === 'fail')
  if (failed.length === 0) return EXIT.ok
  return failed.some((c) => c.cause !== 'unavailable') ? EXIT.config : EXIT.unavailable
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      "check the production configuration (serve's environment variables) against Amazon's rules, the database and the LWA credentials",
    )
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const checks = await runDoctor(process.env)
      const exitCode = doctorExitCode(checks)
      if (opts.json) {
        printJson({ ok: exitCode === EXIT.ok, exit_code: exitCode, checks })
      } else {
        const width = Math.max(...checks.map((c) => c.name.length))
        for (const c of checks) {
          process.stdout.write(`${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.message}\n`)
          if (c.fix && c.status !== 'ok') process.stdout.write(`${' '.repeat(width + 8)}fix: ${c.fix}\n`)
        }
        const failed = checks.filter((c) => c.status === 'fail').length
        const warned = checks.filter((c) => c.status === 'warn').length
        process.stdout.write(
          failed === 0
            ? `\nAll checks passed${warned > 0 ? ` (${warned} warning(s))` : ''}.\n`
            : `\n${failed} check(s) failed.\n`,
        )
      }
      process.exitCode = exitCode
    })
}
