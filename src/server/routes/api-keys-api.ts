/**
 * API keys as managed objects, all behind the `manage` scope:
 *
 * - `POST /v1/api-keys {name, scopes, tenants?}` → 201 with the key, shown this once (`key`); `tenants`
 *   omitted or null is every tenant. A key may only create keys within itself: its scopes and tenants must
 *   include the new key's (403 `forbidden` otherwise; a tenant-scoped key cannot create an all-tenant key).
 * - `GET /v1/api-keys` → `{data: [key]}` without values or hashes. A tenant-scoped key sees only the keys within
 *   its own tenants.
 * - `DELETE /v1/api-keys/:id` → the key, revoked (from then on it gets 401). Keys a caller cannot see are 404.
 *   Bootstrap keys (`SP_CONNECT_API_KEYS`) live in the configuration and are not listed or revoked here.
 */
import { Hono } from 'hono'
import { createApiKeyBodySchema } from '../../api-schemas/api-keys.ts'
import { apiKeyJson, createApiKey, revokeApiKey, validateApiKeySpec } from '../../core/access/api-keys.ts'
import { isWithin, type Principal, requireScope } from '../../core/access/principal.ts'
import { isApiKeyId, requireId } from '../../core/ids.ts'
import { SpConnectError } from '../../domain/errors.ts'
import type { ApiKeyRecord } from '../../store/api-key-store.ts'
import type { ServerEnv } from '../context.ts'
import { parse } from '../parse-request.ts'

/** Mounted under /v1 behind the API-key check (see api.ts). */
export const apiKeysApiRoutes = new Hono<ServerEnv>()

/** Whether `principal` may see (list, revoke) a stored key: one within its own scopes and tenants. */
function canSeeKey(principal: Principal, record: ApiKeyRecord): boolean {
  return isWithin(principal, record.scopes, record.tenants)
}

apiKeysApiRoutes.post('/api-keys', async (c) => {
  const { principal, runtime } = c.var
  requireScope(principal, 'manage')
  const body = parse(createApiKeyBodySchema, await c.req.json().catch(() => undefined))
  const spec = {
    name: body.name,
    scopes: body.scopes,
    tenants: body.tenants ?? null,
    createdBy: `api:${principal.keyId}`,
  }
  // Validate first (400 for a malformed request), then compare with the caller (403 for a broader key).
  const checked = validateApiKeySpec(spec)
  if (!isWithin(principal, checked.scopes, checked.tenants)) {
    throw new SpConnectError('forbidden', { detail: 'a key may not create a key broader than itself' })
  }
  const { record, key } = await createApiKey(runtime.store, runtime.deps, runtime.events, spec)
  c.header('cache-control', 'no-store')
  return c.json({ ...apiKeyJson(record), key }, 201)
})

apiKeysApiRoutes.get('/api-keys', async (c) => {
  const { principal, runtime } = c.var
  requireScope(principal, 'manage')
  const keys = await runtime.store.apiKeys.list()
  return c.json({ data: keys.filter((k) => canSeeKey(principal, k)).map(apiKeyJson) })
})

apiKeysApiRoutes.delete('/api-keys/:id', async (c) => {
  const { principal, runtime } = c.var
  requireScope(principal, 'manage')
  const id = requireId(isApiKeyId, c.req.param('id'), 'key id')
  const existing = await runtime.store.apiKeys.get(id)
  if (!existing || !canSeeKey(principal, existing)) throw new SpConnectError('not_found')
  const revoked = await revokeApiKey(
    runtime.store,
    runtime.deps,
    runtime.events,
    id,
    `api:${principal.keyId}`,
  )
  if (!revoked) throw new SpConnectError('not_found')
  return c.json(apiKeyJson(revoked))
})
