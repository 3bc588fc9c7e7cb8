/**
 * Configuration: the environment (or the dev data folder) becomes one frozen, typed object, and every bad
 * variable is reported at once so an operator fixes them in one go. Nothing here is secret-bearing output:
 * problems name variables, never their values.
 */
import { z } from 'zod'
import { type KeyringKey, keyMaterialProblem, parseKeyringSpec } from './core/crypto/keyring.ts'
import { sha256 } from './core/encoding.ts'
import type { DatabaseConfig } from './store/open.ts'

export type { DatabaseConfig }

const AMAZON_LWA_TOKEN_URL = 'https://api.amazon.com/auth/o2/token'
const AMAZON_URL_TEMPLATE = 'https://{host}'

export interface ApiKey {
  readonly name: string
  /** SHA-256 of the key; the key itself is not kept. */
  readonly hash: string
}

export interface AmazonEndpoints {
  readonly lwaTokenUrl: string
  /** Base URL of a Seller/Vendor Central host; `{host}` is replaced by e.g. sellercentral.amazon.com. */
  readonly centralUrlTemplate: string
  /** Base URL of an SP-API host; `{host}` is replaced by e.g. sellingpartnerapi-na.amazon.com. */
  readonly spapiUrlTemplate: string
  readonly spapiSandbox: boolean
}

export interface WebhookConfig {
  /** Endpoints every event is delivered to (at least once, signed). */
  readonly urls: readonly string[]
  /** HMAC-SHA256 key for the `sp-connect-signature` header; null when there are no endpoints. */
  readonly secret: string | null
}

export interface RefresherConfig {
  readonly enabled: boolean
  /** Refreshes in flight at once, per instance. */
  readonly concurrency: number
  /** Token-endpoint calls per second the refresher allows itself, per instance. */
  readonly ratePerSecond: number
}

/** A token bucket: `perSecond` requests per second on average, up to `burst` at once; `perSecond` 0 is off. */
export interface RateLimitRule {
  readonly perSecond: number
  readonly burst: number
}

/** Abuse limits, per instance (docs/deployment.md, "Abuse limits"). */
export interface RateLimitConfig {
  /** Per API key (by the SHA-256 of the presented credential) on `/v1`. */
  readonly api: RateLimitRule
  /** Per client address on the browser entry points (`/connect*`, `/login*`, `/callback`, confirmation). */
  readonly browser: RateLimitRule
  /** Failed `/v1` credentials (401) one address may present per minute before it is refused; 0 is off. */
  readonly authFailuresPerMinute: number
}

export interface ConsoleConfig {
  /** A console session ends after this long without a request. */
  readonly idleTimeoutMs: number
  /** A console session ends this long after sign-in, however busy. */
  readonly absoluteTimeoutMs: number
}

/** How the seller-facing pages look: the app's name, and optionally its logo and accent colour. */
export interface BrandConfig {
  readonly name: string
  /** An https image URL (or a path on this service); allowed by the pages' CSP. */
  readonly logoUrl: string | null
  /** `#rrggbb`. */
  readonly color: string | null
}

export interface AppConfig {
  readonly mode: 'dev' | 'production'
  /**
   * The public origin of this service (`https://connect.example.com`): scheme, host and port only. A path
   * prefix goes in {@link AppConfig.basePath} (docs/decisions/0012-base-path.md).
   */
  readonly publicUrl: string
  /**
   * The path prefix every route, link, redirect and cookie lives under when sp-connect is mounted inside a
   * host app (`/amazon`), or absent/'' for the root. Starts with `/`, no trailing slash (SP_CONNECT_BASE_PATH).
   */
  readonly basePath?: string
  /** The OAuth Redirect URI registered on the app (normally publicUrl + basePath + /callback). */
  readonly redirectUri: string
  readonly appId: string
  /** A Draft app adds version=beta to consent and Appstore redirects. */
  readonly draftApp: boolean
  readonly lwaClientId: string
  readonly lwaClientSecret: string
  readonly amazon: AmazonEndpoints
  readonly database: DatabaseConfig
  readonly keyring: readonly KeyringKey[]
  readonly apiKeys: readonly ApiKey[]
  /** Refresh an access token when less than this is left. */
  readonly tokenRefreshMarginMs: number
  /** How long a process may hold a connection's refresh lease before another may take over. */
  readonly tokenLeaseMs: number
  /**
   * Longest a caller waits for an access token (all attempts and waits included) before a 503 with
   * Retry-After; a refresh still running then goes on for the next caller. SP_CONNECT_TOKEN_DEADLINE_SECONDS.
   */
  readonly tokenDeadlineMs: number
  /**
   * Longest an SP-API call may wait for its turn under the usage plan and for retries before it fails with
   * `spapi_throttled` (429, Retry-After); a caller's own deadline wins. SP_CONNECT_SPAPI_DEADLINE_SECONDS.
   */
  readonly spapiDeadlineMs?: number
  /** Callers one instance lets wait per (connection, operation); beyond it `spapi_queue_full`. SP_CONNECT_SPAPI_MAX_WAITING. */
  readonly spapiMaxWaiting?: number
  /** Life of a `state` value. */
  readonly stateTtlMs: number
  /** Origins an app may name in `return_to` (besides this service's own paths). */
  readonly returnOrigins: readonly string[]
  /**
   * The app's own sign-in page for the Login URI (`SP_CONNECT_APP_SIGNIN_URL`): Amazon's Appstore and
   * re-authorization requests are handed there with `sp_connect_login=<id>`; null refuses them.
   */
  readonly appSignInUrl: string | null
  /** Seller-facing pages' branding (`SP_CONNECT_BRAND_*`). */
  readonly brand: BrandConfig
  /** Where a seller's "start again" goes when the flow named no return URL (`SP_CONNECT_SELLER_START_URL`). */
  readonly sellerStartUrl: string | null
  /** True when the browser-binding cookie may be a plain (non-Secure, non-__Host-) cookie: http://localhost only. */
  readonly insecureCookies: boolean
  readonly webhooks: WebhookConfig
  readonly refresher: RefresherConfig
  readonly rateLimits: RateLimitConfig
  /**
   * Proxies in front of the service that append to `X-Forwarded-For`; 0 means the socket's address is the
   * client's, and the header is ignored.
   */
  readonly trustedProxyHops: number
  /** Operator console session timeouts; defaults 30 minutes idle, 12 hours absolute. */
  readonly console?: ConsoleConfig
  readonly port: number
  readonly host: string
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent'
  /**
   * Who may read `/metrics` in production: bearers of `SP_CONNECT_METRICS_KEY`, and/or anyone reaching the
   * separate listener `SP_CONNECT_METRICS_ADDRESS` (host:port). Neither: `/metrics` answers 404. Dev: open.
   */
  readonly metrics?: { readonly key: string | null; readonly address: { host: string; port: number } | null }
}

export class ConfigError extends Error {
  /** Its row in the one error table (`ERROR_CODES`): decides the CLI exit code (78). */
  readonly code = 'config_invalid' as const
  readonly problems: readonly string[]

  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

function isLoopbackUrl(url: URL): boolean {
  return LOOPBACK_HOSTS.has(url.hostname)
}

/**
 * An absolute URL that must be https, unless plain http to a loopback address was explicitly allowed
 * (local simulators and test servers).
 */
function secureUrl(allowHttpLoopback: boolean) {
  return z.string().superRefine((value, ctx) => {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute URL' })
      return
    }
    if (url.protocol === 'https:') return
    if (url.protocol === 'http:' && allowHttpLoopback && isLoopbackUrl(url)) return
    ctx.addIssue({
      code: 'custom',
      message: allowHttpLoopback
        ? 'must be https:// (or http:// to localhost/127.0.0.1)'
        : 'must be https:// (set SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK=1 to allow http:// to loopback for testing)',
    })
  })
}

const boolish = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((value) => value === '1' || value === 'true' || value === 'yes')

function buildEnvSchema(allowHttpLoopback: boolean) {
  const url = secureUrl(allowHttpLoopback)
  const template = url.refine((value) => value.includes('{host}'), 'must contain {host}')
  return z.object({
    SP_CONNECT_PUBLIC_URL: url.refine(
      (value) => isOrigin(value.replace(/\/+$/, '')),
      'must be the origin only (https://host[:port]); put a path prefix in SP_CONNECT_BASE_PATH',
    ),
    SP_CONNECT_BASE_PATH: z
      .string()
      .superRefine((value, ctx) => {
        const problem = basePathProblem(value)
        if (problem) ctx.addIssue({ code: 'custom', message: problem })
      })
      .optional(),
    SP_CONNECT_REDIRECT_URI: url.optional(),
    SP_CONNECT_APP_ID: z
      .string()
      .regex(
        /^amzn1\.(sellerapps\.app|sp\.solution)\.[A-Za-z0-9-]+$/,
        'must be an SP-API app id (amzn1.sp.solution.… or amzn1.sellerapps.app.…), not the LWA client id',
      ),
    SP_CONNECT_APP_STATUS: z.enum(['draft', 'published']).default('published'),
    SP_CONNECT_LWA_CLIENT_ID: z
      .string()
      .regex(
        /^amzn1\.application-oa2-client\.[A-Za-z0-9]+$/,
        'must be an LWA client id (amzn1.application-oa2-client.…)',
      ),
    SP_CONNECT_LWA_CLIENT_SECRET: z.string().min(16, 'must be the LWA client secret'),
    SP_CONNECT_LWA_TOKEN_URL: url.default(AMAZON_LWA_TOKEN_URL),
    SP_CONNECT_CENTRAL_URL_TEMPLATE: template.default(AMAZON_URL_TEMPLATE),
    SP_CONNECT_SPAPI_URL_TEMPLATE: template.default(AMAZON_URL_TEMPLATE),
    SP_CONNECT_SPAPI_SANDBOX: boolish.default(false),
    DATABASE_URL: z.string().min(1, 'is required (a SQLite file path, file:PATH, or postgres://…)'),
    SP_CONNECT_DB_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
    SP_CONNECT_DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(15_000),
    SP_CONNECT_ENCRYPTION_KEYS: z.string().min(1, 'is required (id:base64key[,older-id:base64key…])'),
    SP_CONNECT_API_KEYS: z.string().min(1, 'is required (name:key[,name:key…], keys of 32+ characters)'),
    SP_CONNECT_TOKEN_REFRESH_MARGIN_SECONDS: z.coerce.number().int().min(30).max(3000).default(300),
    SP_CONNECT_TOKEN_LEASE_SECONDS: z.coerce.number().int().min(1).max(600).default(60),
    SP_CONNECT_TOKEN_DEADLINE_SECONDS: z.coerce.number().int().min(1).max(300).default(15),
    SP_CONNECT_SPAPI_DEADLINE_SECONDS: z.coerce.number().int().min(1).max(600).default(30),
    SP_CONNECT_SPAPI_MAX_WAITING: z.coerce.number().int().min(1).max(100_000).default(100),
    SP_CONNECT_RETURN_ORIGINS: z.string().default(''),
    SP_CONNECT_APP_SIGNIN_URL: url.optional(),
    SP_CONNECT_SELLER_START_URL: url.optional(),
    SP_CONNECT_BRAND_NAME: z
      .string()
      .max(80)
      .regex(/^[^\p{Cc}<>]+$/u, 'must be plain text without control characters or angle brackets')
      .optional(),
    SP_CONNECT_BRAND_LOGO_URL: url.optional(),
    SP_CONNECT_BRAND_COLOR: z
      .string()
      .regex(/^#[0-9a-fA-F]{6}$/, 'must be a colour like #1a73e8')
      .optional(),
    SP_CONNECT_WEBHOOK_URLS: z.string().default(''),
    SP_CONNECT_WEBHOOK_SECRET: z
      .string()
      .min(32, 'must be at least 32 characters')
      // A secret of one repeated character or a short repeated pattern is a placeholder, not a secret.
      .refine((secret) => new Set(secret).size >= 8, 'must have at least 8 distinct characters')
      .optional(),
    SP_CONNECT_REFRESHER: z.enum(['on', 'off']).default('on'),
    SP_CONNECT_REFRESH_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
    SP_CONNECT_REFRESH_RATE_PER_SECOND: z.coerce.number().min(0.1).max(1000).default(5),
    SP_CONNECT_RATE_LIMIT_API_PER_SECOND: z.coerce.number().min(0).max(100_000).default(20),
    SP_CONNECT_RATE_LIMIT_API_BURST: z.coerce.number().int().min(1).max(1_000_000).default(100),
    SP_CONNECT_RATE_LIMIT_BROWSER_PER_SECOND: z.coerce.number().min(0).max(100_000).default(2),
    SP_CONNECT_RATE_LIMIT_BROWSER_BURST: z.coerce.number().int().min(1).max(1_000_000).default(30),
    SP_CONNECT_RATE_LIMIT_AUTH_FAILURES: z.coerce.number().int().min(0).max(100_000).default(20),
    SP_CONNECT_TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
    SP_CONNECT_CONSOLE_IDLE_MINUTES: z.coerce
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(30),
    SP_CONNECT_CONSOLE_ABSOLUTE_HOURS: z.coerce
      .number()
      .int()
      .min(1)
      .max(7 * 24)
      .default(12),
    SP_CONNECT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'silent']).default('info'),
    SP_CONNECT_METRICS_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
    SP_CONNECT_METRICS_ADDRESS: z
      .string()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port')
      .optional(),
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    SP_CONNECT_HOST: z.string().default('0.0.0.0'),
  })
}

/**
 * Reads the production configuration from an environment. Throws ConfigError listing every problem.
 */
export function loadConfigFromEnv(env: Readonly<Record<string, string | undefined>>): AppConfig {
  const problems: string[] = []
  const insecure = env['SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK']
  const allowHttpLoopback = insecure === '1' || insecure === 'true'
  const parsed = buildEnvSchema(allowHttpLoopback).safeParse(definedOnly(env))
  // Node then accepts any certificate, so the LWA client secret and refresh tokens would go to whoever answers.
  // Only the documented test setting (loopback over plain http) may run that way.
  if (env['NODE_TLS_REJECT_UNAUTHORIZED'] === '0' && !allowHttpLoopback) {
    problems.push(
      'NODE_TLS_REJECT_UNAUTHORIZED=0 turns off TLS certificate checks; unset it (trust a private CA with NODE_EXTRA_CA_CERTS instead)',
    )
  }
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = issue.path.join('.') || 'environment'
      problems.push(issue.code === 'invalid_type' ? `${name} is required` : `${name} ${issue.message}`)
    }
  }
  const keyring = parseWith(problems, 'SP_CONNECT_ENCRYPTION_KEYS', () =>
    validateKeyring(parseKeyringSpec(env['SP_CONNECT_ENCRYPTION_KEYS'] ?? '')),
  )
  const apiKeys = parseWith(problems, 'SP_CONNECT_API_KEYS', () =>
    parseApiKeys(env['SP_CONNECT_API_KEYS'] ?? ''),
  )
  const database = parseWith(problems, 'DATABASE_URL', () => parseDatabaseUrl(env['DATABASE_URL'] ?? ''))
  const returnOrigins = parseWith(problems, 'SP_CONNECT_RETURN_ORIGINS', () =>
    parseUrlList(env['SP_CONNECT_RETURN_ORIGINS'] ?? '', allowHttpLoopback).map((url) => url.origin),
  )
  const webhookUrls = parseWith(problems, 'SP_CONNECT_WEBHOOK_URLS', () =>
    parseUrlList(env['SP_CONNECT_WEBHOOK_URLS'] ?? '', allowHttpLoopback).map((url) => url.href),
  )
  if (webhookUrls && webhookUrls.length > 0 && !env['SP_CONNECT_WEBHOOK_SECRET']) {
    problems.push('SP_CONNECT_WEBHOOK_SECRET is required when SP_CONNECT_WEBHOOK_URLS is set')
  }
  if (!parsed.success || !keyring || !apiKeys || !database || !returnOrigins || !webhookUrls) {
    throw new ConfigError(problems)
  }
  const e = parsed.data
  const publicUrl = e.SP_CONNECT_PUBLIC_URL.replace(/\/+$/, '')
  const basePath = e.SP_CONNECT_BASE_PATH ?? ''
  const redirectUri = e.SP_CONNECT_REDIRECT_URI ?? `${publicUrl}${basePath}/callback`
  if (redirectUri.includes('#')) problems.push('SP_CONNECT_REDIRECT_URI must not contain a fragment (#)')
  if (problems.length > 0) throw new ConfigError(problems)
  return Object.freeze({
    mode: 'production',
    publicUrl,
    basePath,
    redirectUri,
    appId: e.SP_CONNECT_APP_ID,
    draftApp: e.SP_CONNECT_APP_STATUS === 'draft',
    lwaClientId: e.SP_CONNECT_LWA_CLIENT_ID,
    lwaClientSecret: e.SP_CONNECT_LWA_CLIENT_SECRET,
    amazon: Object.freeze({
      lwaTokenUrl: e.SP_CONNECT_LWA_TOKEN_URL,
      centralUrlTemplate: e.SP_CONNECT_CENTRAL_URL_TEMPLATE.replace(/\/+$/, ''),
      spapiUrlTemplate: e.SP_CONNECT_SPAPI_URL_TEMPLATE.replace(/\/+$/, ''),
      spapiSandbox: e.SP_CONNECT_SPAPI_SANDBOX,
    }),
    database:
      database.kind === 'postgres'
        ? {
            ...database,
            poolSize: e.SP_CONNECT_DB_POOL_SIZE,
            statementTimeoutMs: e.SP_CONNECT_DB_STATEMENT_TIMEOUT_MS,
          }
        : database,
    keyring,
    apiKeys,
    tokenRefreshMarginMs: e.SP_CONNECT_TOKEN_REFRESH_MARGIN_SECONDS * 1000,
    tokenLeaseMs: e.SP_CONNECT_TOKEN_LEASE_SECONDS * 1000,
    tokenDeadlineMs: e.SP_CONNECT_TOKEN_DEADLINE_SECONDS * 1000,
    spapiDeadlineMs: e.SP_CONNECT_SPAPI_DEADLINE_SECONDS * 1000,
    spapiMaxWaiting: e.SP_CONNECT_SPAPI_MAX_WAITING,
    stateTtlMs: 10 * 60 * 1000,
    returnOrigins,
    appSignInUrl: e.SP_CONNECT_APP_SIGNIN_URL ?? null,
    brand: Object.freeze({
      name: e.SP_CONNECT_BRAND_NAME ?? 'this application',
      logoUrl: e.SP_CONNECT_BRAND_LOGO_URL ?? null,
      color: e.SP_CONNECT_BRAND_COLOR?.toLowerCase() ?? null,
    }),
    sellerStartUrl: e.SP_CONNECT_SELLER_START_URL ?? null,
    webhooks: Object.freeze({ urls: webhookUrls, secret: e.SP_CONNECT_WEBHOOK_SECRET ?? null }),
    refresher: Object.freeze({
      enabled: e.SP_CONNECT_REFRESHER === 'on',
      concurrency: e.SP_CONNECT_REFRESH_CONCURRENCY,
      ratePerSecond: e.SP_CONNECT_REFRESH_RATE_PER_SECOND,
    }),
    rateLimits: Object.freeze({
      api: { perSecond: e.SP_CONNECT_RATE_LIMIT_API_PER_SECOND, burst: e.SP_CONNECT_RATE_LIMIT_API_BURST },
      browser: {
        perSecond: e.SP_CONNECT_RATE_LIMIT_BROWSER_PER_SECOND,
        burst: e.SP_CONNECT_RATE_LIMIT_BROWSER_BURST,
      },
      authFailuresPerMinute: e.SP_CONNECT_RATE_LIMIT_AUTH_FAILURES,
    }),
    trustedProxyHops: e.SP_CONNECT_TRUSTED_PROXY_HOPS,
    console: Object.freeze({
      idleTimeoutMs: e.SP_CONNECT_CONSOLE_IDLE_MINUTES * 60_000,
      absoluteTimeoutMs: e.SP_CONNECT_CONSOLE_ABSOLUTE_HOURS * 3_600_000,
    }),
    // Production never uses plain cookies: the __Host- prefix requires Secure, which requires https.
    insecureCookies: false,
    port: e.PORT,
    host: e.SP_CONNECT_HOST,
    logLevel: e.SP_CONNECT_LOG_LEVEL,
    metrics: Object.freeze({
      key: e.SP_CONNECT_METRICS_KEY ?? null,
      address: e.SP_CONNECT_METRICS_ADDRESS ? parseHostPort(e.SP_CONNECT_METRICS_ADDRESS) : null,
    }),
  })
}

/**
 * What is wrong with a base path, or undefined when it is one: `/` then segments of letters, digits and
 * `- _ . ~`, no trailing slash, no `.`/`..` segment (a prefix that a URL parser would rewrite is no prefix).
 */
export function basePathProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return 'must start with /'
  if (value.length > 100) return 'must be at most 100 characters'
  if (value.endsWith('/')) return 'must not end with /'
  const segments = value.slice(1).split('/')
  if (segments.some((segment) => !/^[A-Za-z0-9_.~-]+$/.test(segment)))
    return 'must be /segments of letters, digits, - _ . ~'
  if (segments.some((segment) => /^\.+$/.test(segment))) return 'must not have . or .. segments'
  return undefined
}

/** `scheme://host[:port]` and nothing else: no path (not even a trailing `/`), query, fragment or credentials. */
function isOrigin(value: string): boolean {
  if (!URL.canParse(value) || /[/?#]$|[?#]/.test(value.replace(/^[a-z]+:\/\//i, ''))) return false
  const url = new URL(value)
  return url.pathname === '/' && !url.username && !url.password
}

/**
 * Throws ConfigError unless the configuration's public URL is an origin and its base path is valid: for
 * configurations built in code, which do not pass through {@link loadConfigFromEnv}.
 */
export function checkPublicLocation(config: Pick<AppConfig, 'publicUrl' | 'basePath'>): void {
  const problems: string[] = []
  if (!isOrigin(config.publicUrl))
    problems.push('publicUrl must be the origin only (https://host[:port]); put a path prefix in basePath')
  const basePathIssue = config.basePath ? basePathProblem(config.basePath) : undefined
  if (basePathIssue) problems.push(`basePath ${basePathIssue}`)
  if (problems.length > 0) throw new ConfigError(problems)
}

/** `host:port` or `[v6]:port`, already checked by the schema. */
function parseHostPort(value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':')
  return { host: value.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(value.slice(colon + 1)) }
}

export function parseDatabaseUrl(value: string): DatabaseConfig {
  const trimmed = value.trim()
  if (trimmed === '') throw new Error('is required')
  if (/^postgres(ql)?:\/\//.test(trimmed)) return { kind: 'postgres', url: trimmed }
  if (trimmed.startsWith('file:')) return { kind: 'sqlite', path: trimmed.slice('file:'.length) }
  if (trimmed.startsWith('sqlite:'))
    return { kind: 'sqlite', path: trimmed.slice('sqlite:'.length).replace(/^\/\//, '') }
  if (/^[a-z]+:\/\//i.test(trimmed)) throw new Error('must be a SQLite path, file:PATH, or postgres://…')
  return { kind: 'sqlite', path: trimmed }
}

/** API keys as `name:key` pairs; only their hashes are kept. */
function parseApiKeys(spec: string): ApiKey[] {
  const keys = spec
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const colon = part.indexOf(':')
      if (colon <= 0) throw new Error('must be name:key pairs separated by commas')
      const name = part.slice(0, colon)
      const key = part.slice(colon + 1)
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name))
        throw new Error('has a key name that is not 1-64 letters, digits, . _ -')
      if (key.length < 32) throw new Error(`has a key ("${name}") shorter than 32 characters`)
      return { name, hash: sha256(key) }
    })
  if (keys.length === 0) throw new Error('must name at least one key')
  if (new Set(keys.map((k) => k.name)).size !== keys.length) throw new Error('names a key twice')
  return keys
}

function validateKeyring(keys: KeyringKey[]): KeyringKey[] {
  if (keys.length === 0) throw new Error('must hold at least one key')
  const ids = new Set<string>()
  for (const { id, key } of keys) {
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(id))
      throw new Error('has a key id that is not 1-32 letters, digits, - or _')
    if (key.length !== 32) throw new Error(`key "${id}" is not 32 bytes of base64`)
    const weak = keyMaterialProblem(key)
    if (weak !== undefined) throw new Error(`key "${id}" ${weak}`)
    if (ids.has(id)) throw new Error(`names key "${id}" twice`)
    ids.add(id)
  }
  return keys
}

/** Comma-separated https URLs without credentials (http:// to loopback only when explicitly allowed). */
function parseUrlList(spec: string, allowHttpLoopback: boolean): URL[] {
  return spec
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const url = new URL(part)
      const ok =
        url.protocol === 'https:' || (url.protocol === 'http:' && allowHttpLoopback && isLoopbackUrl(url))
      if (!ok || url.username || url.password) throw new Error('must list https:// URLs without credentials')
      return url
    })
}

function parseWith<T>(problems: string[], name: string, parse: () => T): T | undefined {
  try {
    return parse()
  } catch (error) {
    // Problems name the variable and the rule, never the value (it may be a secret).
    const message = error instanceof Error ? error.message : 'is invalid'
    if (!problems.some((p) => p.startsWith(`${name} `))) problems.push(`${name} ${message}`)
    return undefined
  }
}

function definedOnly(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(env)) if (value !== undefined && value !== '') out[key] = value
  return out
}
