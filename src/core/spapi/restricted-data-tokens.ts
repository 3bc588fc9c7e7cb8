/**
 * Restricted Data Tokens (Tokens API 2021-03-01, spapi-facts.md §6.3): a cache per connection and resource set
 * that reuses an RDT until a minute before it expires, and one request per set for concurrent callers.
 *
 * RDTs stay in this process's memory only: never in the database, a log line or an error.
 */

import { SpConnectError } from '../../domain/errors.ts'
import type { Deps } from '../deps.ts'

/** Methods the Tokens API accepts for a restricted resource. */
export const RESTRICTED_METHODS = ['GET', 'PUT', 'POST', 'DELETE'] as const
/** Data elements Amazon defines (Orders getOrder, getOrders, getOrderItems). */
export const DATA_ELEMENTS = ['buyerInfo', 'shippingAddress', 'buyerTaxInformation'] as const
/** Most resources one RDT request may name. */
export const MAX_RESTRICTED_RESOURCES = 50
/** An RDT is not used within this long of its expiry. */
const RDT_EXPIRY_MARGIN_MS = 60_000

export interface RestrictedResource {
  readonly method: (typeof RESTRICTED_METHODS)[number]
  /**
   * A concrete path (`/orders/v0/orders/123-…`) or a template for "any" (`/orders/v0/orders/{orderId}`).
   * SpApiClient.call asks for the operation's template; the RDT door passes on what its caller named.
   */
  readonly path: string
  readonly dataElements?: readonly string[]
}

export interface RestrictedDataToken {
  readonly restrictedDataToken: string
  /** Seconds it stays valid from now. */
  readonly expiresIn: number
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
}

/** Sends one `createRestrictedDataToken` request for the connection. */
export type IssueRestrictedDataToken = (
  connectionId: string,
  body: { restrictedResources: RestrictedResource[]; targetApplication?: string },
  options: { deadline: number },
) => Promise<{ restrictedDataToken: string; expiresIn: number }>

interface RestrictedDataTokensOptions {
  readonly issue: IssueRestrictedDataToken
  /** Default 10,000. */
  readonly maxEntries?: number
  /** Default 16 MiB, keys and tokens counted. */
  readonly maxBytes?: number
}

interface Entry {
  readonly token: string
  readonly expiresAt: number
}

/** Resources in one canonical order, data elements sorted and unique: equal sets get one cache key. */
function canonicalResources(resources: readonly RestrictedResource[]): RestrictedResource[] {
  return resources
    .map((r) => ({
      method: r.method,
      path: r.path,
      ...(r.dataElements === undefined ? {} : { dataElements: [...new Set(r.dataElements)].sort() }),
    }))
    .sort((a, b) => {
      const left = `${a.method} ${a.path} ${a.dataElements?.join(',') ?? ''}`
      const right = `${b.method} ${b.path} ${b.dataElements?.join(',') ?? ''}`
      return left < right ? -1 : left > right ? 1 : 0
    })
}

export class RestrictedDataTokens {
  readonly #issue: IssueRestrictedDataToken
  readonly #deps: Deps
  readonly #maxEntries: number
  readonly #maxBytes: number
  readonly #cache = new Map<string, Entry>()
  readonly #inflight = new Map<string, Promise<Entry>>()
  /** Characters of the cached keys and tokens: a key names up to 50 paths of 2 KiB each. */
  #bytes = 0

  /** `maxEntries` and `maxBytes` bound the cache: the RDT door lets callers name sets of their own, each a new key. */
  constructor(options: RestrictedDataTokensOptions, deps: Deps) {
    this.#issue = options.issue
    this.#deps = deps
    this.#maxEntries = options.maxEntries ?? 10_000
    this.#maxBytes = options.maxBytes ?? 16 * 1024 * 1024
  }

  /** Entries and characters cached now. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.#cache.size, bytes: this.#bytes }
  }

  /**
   * An RDT for `resources` of the connection: the cached one while it has more than a minute left, else a new
   * one, requested once however many callers ask at the same time.
   */
  async get(
    connectionId: string,
    resources: readonly RestrictedResource[],
    options: { targetApplication?: string | undefined; deadline: number },
  ): Promise<RestrictedDataToken> {
    if (resources.length === 0 || resources.length > MAX_RESTRICTED_RESOURCES)
      throw new SpConnectError('invalid_request', { detail: 'restrictedResources must hold 1 to 50 items' })
    const canonical = canonicalResources(resources)
    const key = cacheKey(connectionId, canonical, options.targetApplication)
    const now = this.#deps.now()
    const cached = this.#cache.get(key)
    if (cached && cached.expiresAt - RDT_EXPIRY_MARGIN_MS > now) return view(cached, now)
    let running = this.#inflight.get(key)
    if (!running) {
      running = this.#request(key, connectionId, canonical, options).finally(() => this.#inflight.delete(key))
      this.#inflight.set(key, running)
    }
    return view(await running, this.#deps.now())
  }

  /** Drops the cached RDT for the set (SP-API refused it). */
  invalidate(
    connectionId: string,
    resources: readonly RestrictedResource[],
    targetApplication?: string,
  ): void {
    this.#delete(cacheKey(connectionId, canonicalResources(resources), targetApplication))
  }

  /** Drops every cached RDT of a connection (disconnected, revoked). */
  forget(connectionId: string): void {
    const prefix = `${connectionId}\u0000`
    for (const key of [...this.#cache.keys()]) if (key.startsWith(prefix)) this.#delete(key)
  }

  async #request(
    key: string,
    connectionId: string,
    resources: RestrictedResource[],
    options: { targetApplication?: string | undefined; deadline: number },
  ): Promise<Entry> {
    const requestedAt = this.#deps.now()
    const issued = await this.#issue(
      connectionId,
      {
        restrictedResources: resources,
        ...(options.targetApplication === undefined ? {} : { targetApplication: options.targetApplication }),
      },
      { deadline: options.deadline },
    )
    // Counted from when we asked, so clock skew and slow answers only make it end earlier.
    const entry = { token: issued.restrictedDataToken, expiresAt: requestedAt + issued.expiresIn * 1000 }
    this.#delete(key)
    const bytes = entrySize(key, entry)
    // One set larger than the whole cache is used once and not kept.
    if (bytes > this.#maxBytes) return entry
    this.#prune(this.#deps.now(), bytes)
    this.#cache.set(key, entry)
    this.#bytes += bytes
    return entry
  }

  #delete(key: string): void {
    const entry = this.#cache.get(key)
    if (entry === undefined) return
    this.#cache.delete(key)
    this.#bytes -= entrySize(key, entry)
  }

  /** Makes room for one more entry of `bytes`: expired entries go first; past a limit, the oldest inserted. */
  #prune(now: number, bytes: number): void {
    const full = () => this.#cache.size >= this.#maxEntries || this.#bytes + bytes > this.#maxBytes
    if (!full()) return
    for (const [key, entry] of [...this.#cache])
      if (entry.expiresAt - RDT_EXPIRY_MARGIN_MS <= now) this.#delete(key)
    while (full()) {
      const oldest = this.#cache.keys().next()
      if (oldest.done) break
      this.#delete(oldest.value)
    }
  }
}

function entrySize(key: string, entry: Entry): number {
  return key.length + entry.token.length
}

function cacheKey(connectionId: string, resources: RestrictedResource[], targetApplication?: string): string {
  return `${connectionId}\u0000${targetApplication ?? ''}\u0000${JSON.stringify(resources)}`
}

function view(entry: Entry, now: number): RestrictedDataToken {
  return {
    restrictedDataToken: entry.token,
    expiresIn: Math.max(0, Math.floor((entry.expiresAt - now) / 1000)),
    expiresAt: entry.expiresAt,
  }
}
