/**
 * The audit log: every lifecycle change of a connection becomes an event row. Event data never holds
 * tokens or secrets, only ids, codes and times.
 */

import type { Store } from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import { newId } from '../encoding.ts'

export const EVENT_TYPES = [
  'connection.created',
  'connection.reauthorized',
  'connection.refresh_failed',
  'connection.needs_reauthorization',
  'connection.disconnected',
] as const
export type EventType = (typeof EVENT_TYPES)[number]

export async function recordEvent(
  store: Store,
  deps: Pick<Deps, 'now' | 'randomBytes' | 'logger'>,
  type: EventType,
  connectionId: string | null,
  data: Record<string, unknown> = {},
): Promise<void> {
  const event = { id: newId('evt', deps.randomBytes), type, connectionId, data, createdAt: deps.now() }
  await store.appendEvent(event)
  deps.logger.info({ event: type, connectionId, ...data }, 'connection event')
}
