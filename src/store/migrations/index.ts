/**
 * Every schema migration, oldest first. Add a new timestamp-named module and append it here; never edit or
 * reorder one that has shipped.
 */
import type { Migration } from '../migrator.ts'
import * as initial from './2026-11-21T00-initial.ts'
import * as tokenLifecycle from './2026-11-21T01-token-lifecycle.ts'
import * as refreshOrderIndex from './2026-11-22T00-refresh-order-index.ts'
import * as ownership from './2026-11-30T00-ownership.ts'
import * as apiKeys from './2026-11-30T01-api-keys.ts'
import * as operators from './2026-11-30T02-operators.ts'
import * as sweepIndexes from './2026-11-30T03-sweep-indexes.ts'
import * as rateBuckets from './2026-11-30T04-rate-buckets.ts'
import * as rateBucketsUnlogged from './2026-11-30T05-rate-buckets-unlogged.ts'

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  { name: '2026-11-21T00-initial', up: initial.up, down: initial.down },
  { name: '2026-11-21T01-token-lifecycle', up: tokenLifecycle.up, down: tokenLifecycle.down },
  { name: '2026-11-22T00-refresh-order-index', up: refreshOrderIndex.up, down: refreshOrderIndex.down },
  { name: '2026-11-30T00-ownership', up: ownership.up, down: ownership.down },
  { name: '2026-11-30T01-api-keys', up: apiKeys.up, down: apiKeys.down },
  { name: '2026-11-30T02-operators', up: operators.up, down: operators.down },
  { name: '2026-11-30T03-sweep-indexes', up: sweepIndexes.up, down: sweepIndexes.down },
  { name: '2026-11-30T04-rate-buckets', up: rateBuckets.up, down: rateBuckets.down },
  { name: '2026-11-30T05-rate-buckets-unlogged', up: rateBucketsUnlogged.up, down: rateBucketsUnlogged.down },
])
