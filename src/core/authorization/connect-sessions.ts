/**
 * Connect sessions: the app's backend asks for a link for one of its users (tenant); opening the link starts
 * the website workflow for that tenant. The link's token is 256 random bits, stored only as a hash.
 */
import { SpConnectError } from '../../domain/errors.ts'
import type { AccountType, Region } from '../../domain/regions.ts'
import type { AuthStateStore, ConnectSessionRecord } from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import { base64url, sha256 } from '../encoding.ts'
import { isWellFormedRandomValue } from './state.ts'

const CONNECT_SESSION_TTL_MS = 60 * 60 * 1000

interface NewConnectSession {
  readonly tenantId: string
  readonly region: Region
  readonly accountType: AccountType
  readonly marketplace: string | null
  readonly returnTo: string | null
  /** Set for a reconnect link: the connection it re-authorizes (owned by `tenantId`). */
  readonly connectionId: string | null
}

export async function createConnectSession(
  store: AuthStateStore,
  deps: Pick<Deps, 'now' | 'randomBytes'>,
  input: NewConnectSession,
): Promise<{ token: string; expiresAt: number }> {
  const token = base64url(deps.randomBytes(32))
  const now = deps.now()
  const expiresAt = now + CONNECT_SESSION_TTL_MS
  await store.insertConnectSession({ tokenHash: sha256(token), ...input, createdAt: now, expiresAt })
  return { token, expiresAt }
}

/** The session a link's token names, if it exists and has not expired. */
export async function openConnectSession(
  store: AuthStateStore,
  deps: Pick<Deps, 'now'>,
  token: string,
): Promise<ConnectSessionRecord> {
  if (!isWellFormedRandomValue(token)) throw new SpConnectError('connect_session_invalid')
  const session = await store.getConnectSession(sha256(token))
  if (!session || session.expiresAt <= deps.now()) throw new SpConnectError('connect_session_invalid')
  return session
}
