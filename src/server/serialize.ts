/** The API's view of a connection: ids, status and times; never a ciphertext or token. */
import type { ConnectionRecord, EventRecord } from '../store/store.ts'

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

export function connectionJson(c: ConnectionRecord) {
  return {
    id: c.id,
    selling_partner_id: c.sellingPartnerId,
    region: c.region,
    account_type: c.accountType,
    tenant_id: c.tenantId,
    status: c.status,
    status_reason: c.statusReason,
    authorized_at: iso(c.authorizedAt),
    reauthorize_by: iso(c.reauthorizeBy),
    access_token_expires_at: iso(c.accessTokenExpiresAt),
    last_refresh_at: iso(c.lastRefreshAt),
    last_refresh_error: c.lastRefreshError,
    failure_count: c.failureCount,
    created_at: iso(c.createdAt),
    updated_at: iso(c.updatedAt),
  }
}

export type ConnectionJson = ReturnType<typeof connectionJson>

export function eventJson(e: EventRecord) {
  return { id: e.id, type: e.type, connection_id: e.connectionId, data: e.data, created_at: iso(e.createdAt) }
}
