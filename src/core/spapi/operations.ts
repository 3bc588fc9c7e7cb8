/**
 * The SP-API operations sp-connect knows: method, path template, Amazon's published default usage plan
 * (rate in requests per second, burst), and whether an RDT is needed for their restricted data.
 * The table itself lives in ./usage-plans.ts (data derived from Amazon's published API models).
 *
 * CONTRACT (owned by the simulator/operations helper; other modules code against these names):
 */
import { USAGE_PLANS } from './usage-plans.ts'

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
export type HttpMethod = (typeof HTTP_METHODS)[number]

export interface RatePlan {
  /** Tokens added per second. */
  readonly rate: number
  /** Bucket size. */
  readonly burst: number
}

export interface SpApiOperation extends RatePlan {
  /** API section and version as in the models' folder names, e.g. `orders` / `v0`. */
  readonly api: string
  readonly version: string
  /**
   * Unique across the table: the model's operationId (`getMarketplaceParticipations`), or, where several models
   * share that operationId, `api.version.operationId` (`orders.v0.getOrders`, `sellers.v1.getAccount`).
   */
  readonly name: string
  /** The model's operationId as published; several operations can share one. */
  readonly operationId: string
  /**
   * Absent: the model publishes exactly this plan. `default-of-several`: the model lists several plans and this
   * is its Default row. `unpublished`: the model publishes none; this is sp-connect's fallback (see usage-plans.ts).
   */
  readonly planSource?: 'default-of-several' | 'unpublished'
  readonly method: HttpMethod
  /** Path template with `{placeholders}`, e.g. `/orders/v0/orders/{orderId}`. */
  readonly path: string
  /**
   * Present when Amazon restricts (part of) the operation's data to Restricted Data Tokens
   * (spapi-facts.md §6.3); `dataElements` lists the elements the RDT may ask for (Orders only).
   */
  readonly restricted?: { readonly dataElements?: readonly string[] }
  /** A POST that only reads (batch lookups), so retrying it after it was sent cannot do anything twice. */
  readonly idempotent?: boolean
}

interface OperationMatch {
  readonly operation: SpApiOperation
  /** Decoded path parameters by placeholder name. */
  readonly params: Readonly<Record<string, string>>
}

/** The Tokens API's own plan (spapi-facts.md §6.3). */
export const RDT_PLAN: RatePlan = { rate: 1, burst: 10 }

/** Every operation sp-connect knows, in the models' order. */
export const OPERATIONS: readonly SpApiOperation[] = USAGE_PLANS

interface TrieNode {
  readonly literals: Map<string, TrieNode>
  /** Any one segment; templates name it differently, so values are named from the matched template. */
  param?: TrieNode
  operation?: SpApiOperation
}

const newNode = (): TrieNode => ({ literals: new Map() })

/** One path-segment trie per method: a lookup costs one map probe per segment, whatever the table's size. */
const TRIES = buildTries(OPERATIONS)
const BY_NAME = new Map(OPERATIONS.map((operation) => [operation.name, operation]))
const PARAM_NAMES = new Map(
  OPERATIONS.map((operation) => [
    operation,
    [...operation.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1] ?? ''),
  ]),
)

function buildTries(operations: readonly SpApiOperation[]): ReadonlyMap<string, TrieNode> {
  const tries = new Map<string, TrieNode>()
  for (const operation of operations) {
    let node = tries.get(operation.method) ?? newNode()
    tries.set(operation.method, node)
    for (const segment of operation.path.split('/').slice(1)) {
      if (/^\{\w+\}$/.test(segment)) {
        node.param ??= newNode()
        node = node.param
      } else {
        const next = node.literals.get(segment) ?? newNode()
        node.literals.set(segment, next)
        node = next
      }
    }
    node.operation = operation
  }
  return tries
}

/**
 * The operation `method path` (path without query) calls, or undefined when it is none sp-connect knows.
 * Strict on purpose, since the answer decides what is forwarded to Amazon: no trailing slash, no empty or dot
 * segments (raw or percent-encoded), literal segments compared as sent, parameters percent-decoded. Where a
 * literal and a parameter could both match a segment, the literal wins (`/fba/inventory/v1/items/inventory`).
 */
export function findOperation(method: string, path: string): OperationMatch | undefined {
  const root = TRIES.get(method.toUpperCase())
  // A query or fragment left in the path would otherwise be taken for part of a parameter.
  if (!root || !path.startsWith('/') || path.includes('?') || path.includes('#')) return undefined
  const segments = path.slice(1).split('/')
  const values: string[] = []
  const operation = walk(root, segments, 0, values)
  if (!operation) return undefined
  const params: Record<string, string> = {}
  PARAM_NAMES.get(operation)?.forEach((name, index) => {
    params[name] = values[index] ?? ''
  })
  return { operation, params }
}

function walk(
  node: TrieNode,
  segments: readonly string[],
  index: number,
  values: string[],
): SpApiOperation | undefined {
  if (index === segments.length) return node.operation
  const raw = segments[index] ?? ''
  if (raw === '' || raw === '.' || raw === '..') return undefined
  const literal = node.literals.get(raw)
  const found = literal && walk(literal, segments, index + 1, values)
  if (found || !node.param) return found
  const value = decodeSegment(raw)
  if (value === undefined) return undefined
  values.push(value)
  const viaParam = walk(node.param, segments, index + 1, values)
  if (!viaParam) values.pop()
  return viaParam
}

function decodeSegment(raw: string): string | undefined {
  try {
    const value = decodeURIComponent(raw)
    return value === '' || value === '.' || value === '..' ? undefined : value
  } catch {
    return undefined
  }
}

/** The operation with this table name (see `SpApiOperation.name`), or undefined. */
export function findOperationByName(name: string): SpApiOperation | undefined {
  return BY_NAME.get(name)
}
