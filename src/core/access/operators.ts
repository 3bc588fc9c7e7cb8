/**
 * Operator accounts and console sessions (issue 7 rule 6; docs/decisions/0009-operator-console.md).
 *
 * - Accounts are created by the CLI; passwords are hashed with a memory-hard KDF (passwords.ts).
 * - Sign-in does the same KDF work whether or not the email exists, counts failures per email and per client
 *   address (SignInThrottle), and audits every failure (`operator.sign_in_failed`, never the password).
 * - A session id is 256 random bits, given to the browser only; the store keeps its SHA-256. Every sign-in
 *   makes a new id (no fixation). Sessions end at an idle deadline (sliding) or an absolute one, whichever is
 *   first, or at sign-out.
 */
import { SpConnectError } from '../../domain/errors.ts'
import type { OperatorAccountRecord, OperatorSessionRecord } from '../../store/operator-store.ts'
import type { Store } from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import { base64url, newId, sha256 } from '../encoding.ts'
import type { EventRecorder } from '../events/events.ts'
import { dummyHash, hashPassword, passwordProblem, verifyPassword } from './passwords.ts'
import { SignInThrottle } from './sign-in-throttle.ts'

export const DEFAULT_CONSOLE_IDLE_TIMEOUT_MS = 30 * 60 * 1000
export const DEFAULT_CONSOLE_ABSOLUTE_TIMEOUT_MS = 12 * 60 * 60 * 1000
/** Failures per email (or client address) before a lockout, and the lockout window. */
const SIGN_IN_MAX_FAILURES = 5
const SIGN_IN_WINDOW_MS = 15 * 60 * 1000

export interface ConsoleTimeouts {
  readonly idleMs: number
  readonly absoluteMs: number
}

const EMAIL = /^[^\s@\p{Cc}]{1,64}@[^\s@\p{Cc}]{1,190}$/u

/** Trims and lower-cases an email; throws `invalid_request` unless it looks like one. */
function normalizeEmail(email: string): string {
  const normalized = email.trim().toLowerCase()
  if (!EMAIL.test(normalized)) throw new SpConnectError('invalid_request', { detail: 'not an email address' })
  return normalized
}

/** Creates an operator account. Throws `operator_exists` when the email is taken. */
export async function createOperator(
  store: Store,
  deps: Pick<Deps, 'now' | 'randomBytes'>,
  events: EventRecorder,
  input: { email: string; password: string },
): Promise<OperatorAccountRecord> {
  const email = normalizeEmail(input.email)
  const problem = passwordProblem(input.password)
  if (problem) throw new SpConnectError('invalid_request', { detail: problem })
  const now = deps.now()
  const account: OperatorAccountRecord = {
    id: newId('opr', deps.randomBytes),
    email,
    passwordHash: await hashPassword(input.password),
    createdAt: now,
    updatedAt: now,
    lastSignInAt: null,
  }
  if (!(await store.operators.insertAccount(account))) throw new SpConnectError('operator_exists')
  await events.record('operator.created', null, { operator: email })
  return account
}

/** Deletes an operator and ends its sessions. Throws `operator_not_found`. */
export async function deleteOperator(store: Store, events: EventRecorder, email: string): Promise<void> {
  const normalized = normalizeEmail(email)
  if (!(await store.operators.deleteAccount(normalized))) throw new SpConnectError('operator_not_found')
  await events.record('operator.deleted', null, { operator: normalized })
}

/** Who is signed in to a console session. */
export interface ConsoleSession {
  /** The raw session id (from the cookie); never stored. */
  readonly id: string
  readonly record: OperatorSessionRecord
}

/** Starts a session: a fresh 256-bit id, stored as its SHA-256. */
export async function startConsoleSession(
  store: Store,
  deps: Pick<Deps, 'now' | 'randomBytes'>,
  timeouts: ConsoleTimeouts,
  who: { operatorId: string | null; label: string },
): Promise<ConsoleSession> {
  const id = base64url(deps.randomBytes(32))
  const now = deps.now()
  const absoluteExpiresAt = now + timeouts.absoluteMs
  const record: OperatorSessionRecord = {
    idHash: sha256(id),
    operatorId: who.operatorId,
    label: who.label,
    createdAt: now,
    lastSeenAt: now,
    idleExpiresAt: Math.min(now + timeouts.idleMs, absoluteExpiresAt),
    absoluteExpiresAt,
  }
  await store.operators.insertSession(record)
  return { id, record }
}

const SESSION_ID = /^[A-Za-z0-9_-]{43}$/

/** The live session with this id (sliding its idle deadline), or undefined. */
export async function resumeConsoleSession(
  store: Store,
  deps: Pick<Deps, 'now'>,
  timeouts: ConsoleTimeouts,
  id: string | undefined,
): Promise<ConsoleSession | undefined> {
  if (id === undefined || !SESSION_ID.test(id)) return undefined
  const record = await store.operators.touchSession(sha256(id), deps.now(), timeouts.idleMs)
  return record && { id, record }
}

export async function endConsoleSession(store: Store, id: string): Promise<void> {
  await store.operators.deleteSession(sha256(id))
}

/** The lockouts sign-in consults: per email (few failures) and per client address (more, shared by a NAT). */
export interface SignInThrottles {
  readonly byEmail: SignInThrottle
  readonly bySource: SignInThrottle
}

/** Fresh in-memory lockouts with the default limits. */
export function newSignInThrottles(): SignInThrottles {
  return {
    byEmail: new SignInThrottle({ maxFailures: SIGN_IN_MAX_FAILURES, windowMs: SIGN_IN_WINDOW_MS }),
    bySource: new SignInThrottle({ maxFailures: SIGN_IN_MAX_FAILURES * 4, windowMs: SIGN_IN_WINDOW_MS }),
  }
}

/**
 * Checks an operator's email and password. Throws `console_sign_in_throttled` while the email or the client
 * address is locked out, `console_sign_in_failed` for a wrong password or an unknown email (the same answer
 * after the same work); every failure is audited.
 */
export async function authenticateOperator(
  store: Store,
  deps: Pick<Deps, 'now'>,
  events: EventRecorder,
  throttles: SignInThrottles,
  input: { email: string; password: string; source: string | undefined },
): Promise<OperatorAccountRecord> {
  const now = deps.now()
  const typed = input.email.trim().toLowerCase().slice(0, 256)
  let email: string | undefined
  try {
    email = normalizeEmail(typed)
  } catch {
    email = undefined
  }
  const source = input.source
  if (
    throttles.byEmail.lockedUntil(typed, now) !== undefined ||
    (source !== undefined && throttles.bySource.lockedUntil(source, now) !== undefined)
  ) {
    await events.record('operator.sign_in_failed', null, {
      ...(await who(store, email)),
      reason: 'throttled',
    })
    throw new SpConnectError('console_sign_in_throttled', { retryAfterSeconds: 60 })
  }
  const account = email === undefined ? undefined : await store.operators.getAccountByEmail(email)
  const ok = await verifyPassword(input.password, account?.passwordHash ?? (await dummyHash()))
  if (!account || !ok) {
    throttles.byEmail.fail(typed, now)
    if (source !== undefined) throttles.bySource.fail(source, now)
    // The email is named only when it is an account's: a typed value could be a password in the wrong field.
    await events.record('operator.sign_in_failed', null, {
      ...(account ? { operator: account.email } : { unknown_account: true }),
      reason: account ? 'wrong_password' : 'unknown_account',
    })
    throw new SpConnectError('console_sign_in_failed')
  }
  // Only the email's count: a success must not clear an address that is guessing other emails.
  throttles.byEmail.reset(typed)
  await store.operators.recordSignIn(account.id, now)
  return account
}

async function who(store: Store, email: string | undefined): Promise<Record<string, unknown>> {
  const account = email === undefined ? undefined : await store.operators.getAccountByEmail(email)
  return account ? { operator: account.email } : { unknown_account: true }
}
