/**
 * Everything the simulator remembers: the clock offset, the serial counter, grants, revocations,
 * access-token expiry marks and counters (persisted), plus the short-lived authorization codes and
 * amazon_state values (memory only: they live for minutes).
 */
import type { Region } from '../domain/regions.ts'
import { newGrantId } from './ids.ts'
import type { AccessExpiry, GrantRecord, PersistedState, Revocation } from './persistence.ts'
import { SpapiState } from './spapi/state.ts'
import type { GrantType, SimulatedClientSecret, TokenEndpointCounters, TokenFaults } from './types.ts'

export const CODE_TTL_MS = 5 * 60_000
export const AMAZON_STATE_TTL_MS = 10 * 60_000
export const ACCESS_TOKEN_TTL_S = 3600
export const GRANT_TTL_MS = 365 * 24 * 3600_000

interface IssuedCode {
  readonly grantId: string
  readonly grantSerial: number
  readonly clientId: string
  readonly sellingPartnerId: string
  readonly region: Region
  readonly issuedAt: number
  readonly redirectUri: string
  readonly expiresAt: number
}

interface IssuedAmazonState {
  readonly appId: string
  readonly sellingPartnerId: string
  readonly centralHost: string
  readonly expiresAt: number
}

type Outcome = keyof TokenEndpointCounters['byOutcome']

function emptyCounters(): TokenEndpointCounters {
  return {
    total: 0,
    byGrant: { authorization_code: 0, refresh_token: 0, client_credentials: 0, other: 0 },
    byOutcome: { ok: 0, error: 0, fault: 0 },
  }
}

/** Minimal view of a token's serials, enough for revocation and expiry checks. */
interface GrantRef {
  readonly sellingPartnerId: string
  readonly clientId: string
  readonly serial: number
}

/** How a client secret has been used (memory only). */
interface SecretUsage {
  authenticated: number
  refusedAfterExpiry: number
  lastAuthenticatedAt: number | null
}

export class SimulatorState {
  clockOffsetMs = 0
  serial = 0
  faults: TokenFaults = {}
  counters: TokenEndpointCounters = emptyCounters()
  readonly grants: GrantRecord[] = []
  readonly revocations: Revocation[] = []
  readonly accessExpiries: AccessExpiry[] = []
  /** The secrets arrays of apps whose secrets changed, by client id (the apps' own arrays, persisted). */
  readonly clientSecrets = new Map<string, SimulatedClientSecret[]>()
  /** Usage per client secret value (memory only). */
  readonly secretUsage = new Map<string, SecretUsage>()
  /** Last successful rotation per client id, simulator clock (memory only). */
  readonly lastRotationAt = new Map<string, number>()
  /** The simulated SP-API's usage-plan buckets, plan overrides and destinations (memory only). */
  readonly spapi = new SpapiState()
  readonly #codes = new Map<string, IssuedCode>()
  readonly #amazonStates = new Map<string, IssuedAmazonState>()
  /** Called after every change that must reach the state file. */
  onChange: () => void = () => {}

  restore(saved: PersistedState): void {
    this.clockOffsetMs = saved.clockOffsetMs
    this.serial = saved.serial
    this.grants.push(...saved.grants)
    this.revocations.push(...saved.revocations)
    this.accessExpiries.push(...saved.accessExpiries)
    this.counters = saved.counters
  }

  snapshot(signingSecret: string | undefined): PersistedState {
    const state: PersistedState = {
      version: 1,
      clockOffsetMs: this.clockOffsetMs,
      serial: this.serial,
      grants: this.grants,
      revocations: this.revocations,
      accessExpiries: this.accessExpiries,
      counters: this.counters,
    }
    if (signingSecret !== undefined) state.signingSecret = signingSecret
    if (this.clientSecrets.size > 0) state.clientSecrets = Object.fromEntries(this.clientSecrets)
    return state
  }

  /** Marks an app's secrets as changed, so they reach the state file. */
  secretsChanged(clientId: string, secrets: SimulatedClientSecret[]): void {
    this.clientSecrets.set(clientId, secrets)
    this.onChange()
  }

  usageOf(secret: string): SecretUsage {
    let usage = this.secretUsage.get(secret)
    if (usage === undefined) {
      usage = { authenticated: 0, refusedAfterExpiry: 0, lastAuthenticatedAt: null }
      this.secretUsage.set(secret, usage)
    }
    return usage
  }

  nextSerial(): number {
    this.serial += 1
    this.onChange()
    return this.serial
  }

  addGrant(fields: Omit<GrantRecord, 'id' | 'serial'>): GrantRecord {
    const grant: GrantRecord = { id: newGrantId(), serial: this.nextSerial(), ...fields }
    this.grants.push(grant)
    this.onChange()
    return grant
  }

  revoke(sellingPartnerId: string, clientId: string | null, now: number): void {
    this.revocations.push({ sellingPartnerId, clientId, upToSerial: this.serial, at: now })
    this.onChange()
  }

  isRevoked(ref: GrantRef): boolean {
    return this.revocations.some(
      (r) =>
        r.sellingPartnerId === ref.sellingPartnerId &&
        (r.clientId === null || r.clientId === ref.clientId) &&
        ref.serial <= r.upToSerial,
    )
  }

  expireAccessTokens(sellingPartnerId: string | null, now: number): void {
    this.accessExpiries.push({ sellingPartnerId, upToSerial: this.serial, at: now })
    this.onChange()
  }

  /** Whether an access token with this serial was covered by an expire-tokens call. */
  isForcedExpired(sellingPartnerId: string | undefined, tokenSerial: number): boolean {
    return this.accessExpiries.some(
      (e) =>
        (e.sellingPartnerId === null || e.sellingPartnerId === sellingPartnerId) &&
        tokenSerial <= e.upToSerial,
    )
  }

  count(grant: GrantType | 'other', outcome: Outcome): void {
    this.counters.total += 1
    this.counters.byGrant[grant] += 1
    this.counters.byOutcome[outcome] += 1
    this.onChange()
  }

  resetCounters(): void {
    this.counters = emptyCounters()
    this.onChange()
  }

  putCode(code: string, issued: IssuedCode, now: number): void {
    for (const [key, value] of this.#codes) if (value.expiresAt <= now) this.#codes.delete(key)
    this.#codes.set(code, issued)
  }

  /** The code if it exists and has not expired; `consumeCode` makes it single-use. */
  peekCode(code: string, now: number): IssuedCode | undefined {
    const issued = this.#codes.get(code)
    return issued && issued.expiresAt > now ? issued : undefined
  }

  consumeCode(code: string): void {
    this.#codes.delete(code)
  }

  putAmazonState(value: string, issued: IssuedAmazonState, now: number): void {
    for (const [key, entry] of this.#amazonStates) if (entry.expiresAt <= now) this.#amazonStates.delete(key)
    this.#amazonStates.set(value, issued)
  }

  peekAmazonState(value: string, now: number): IssuedAmazonState | undefined {
    const issued = this.#amazonStates.get(value)
    return issued && issued.expiresAt > now ? issued : undefined
  }

  consumeAmazonState(value: string): void {
    this.#amazonStates.delete(value)
  }
}
