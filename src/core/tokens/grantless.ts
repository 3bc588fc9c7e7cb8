/**
 * Grantless access tokens (`client_credentials` with a scope) for the operations that need no seller
 * (spapi-facts.md §5): cached per scope in memory, one request per scope for concurrent callers.
 */
import { SpConnectError } from '../../domain/errors.ts'
import type { Deps } from '../deps.ts'
import type { LwaClient } from '../lwa/client.ts'
import { type AccessToken, DEFAULT_TOKEN_DEADLINE_MS } from './manager.ts'

interface GrantlessTokensOptions {
  readonly lwa: LwaClient
  /** A cached token is renewed this long before it expires. */
  readonly marginMs: number
  /** No LWA retry waits past it, and each attempt's timeout is cut to what is left (issue 8). */
  readonly deadlineMs?: number
}

/** Scopes are literal `sellingpartnerapi::…` values; several may be joined by spaces. */
const SCOPE = /^sellingpartnerapi::[a-z_:]+( sellingpartnerapi::[a-z_:]+)*$/

export class GrantlessTokens {
  readonly #lwa: LwaClient
  readonly #deps: Pick<Deps, 'now'>
  readonly #marginMs: number
  readonly #deadlineMs: number
  readonly #cache = new Map<string, AccessToken>()
  readonly #inflight = new Map<string, Promise<AccessToken>>()

  constructor(options: GrantlessTokensOptions, deps: Pick<Deps, 'now'>) {
    this.#lwa = options.lwa
    this.#deps = deps
    this.#marginMs = options.marginMs
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_TOKEN_DEADLINE_MS
  }

  getToken(scope: string): Promise<AccessToken> {
    const normalized = scope.trim().split(/\s+/).sort().join(' ')
    if (!SCOPE.test(normalized)) {
      throw new SpConnectError('invalid_request', { detail: 'scope must be sellingpartnerapi::… values' })
    }
    const cached = this.#cache.get(normalized)
    if (cached && cached.expiresAt - this.#marginMs > this.#deps.now()) return Promise.resolve(cached)
    const running = this.#inflight.get(normalized)
    if (running) return running
    const work = this.#fetch(normalized).finally(() => this.#inflight.delete(normalized))
    this.#inflight.set(normalized, work)
    return work
  }

  async #fetch(scope: string): Promise<AccessToken> {
    const requestedAt = this.#deps.now()
    const tokens = await this.#lwa.clientCredentials(scope, { deadline: requestedAt + this.#deadlineMs })
    const token = { accessToken: tokens.accessToken, expiresAt: requestedAt + tokens.expiresIn * 1000 }
    this.#cache.set(scope, token)
    return token
  }
}
