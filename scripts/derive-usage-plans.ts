/**
 * Regenerates src/core/spapi/usage-plans.ts from Amazon's published SP-API models.
 *
 *   node scripts/derive-usage-plans.ts <git dir of amzn/selling-partner-api-models> [out file]
 *
 * It reads the models' JSON as data (`git ls-tree` / `git show HEAD:models/…`), takes every operation's method,
 * path and operationId, and parses the "| Rate (requests per second) | Burst |" table Amazon writes into each
 * operation's description. What is our judgement rather than Amazon's data (which operations need an RDT,
 * which POSTs only read, the fallback plan) is written down below, in this file. Without an out file the
 * generated module goes to stdout; notes about operations without a usable plan go to stderr.
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { basename } from 'node:path'

interface DerivedOperation {
  api: string
  version: string
  operationId: string
  name: string
  method: string
  path: string
  rate: number
  burst: number
  planSource?: 'default-of-several' | 'unpublished'
  restricted?: { dataElements?: string[] }
  idempotent?: true
}

/** Used when a model publishes no plan (or `n | n`); the limiter corrects it from `x-amzn-RateLimit-Limit`. */
const FALLBACK_PLAN = { rate: 1, burst: 1 } as const

/** Data elements an RDT may carry, per the Tokens API model's `RestrictedResource.dataElements`. */
const ORDER_DATA_ELEMENTS = ['buyerInfo', 'shippingAddress', 'buyerTaxInformation']

/**
 * Restricted operations (../shared/spapi-facts.md §6.3, from the official Java SDK's RestrictedDataTokenSigner),
 * keyed `api/operationId` and applied to every version of that API. dataElements: the Tokens model says they
 * apply to getOrder, getOrders and getOrderItems; order items only carry buyerInfo (gift wrap, customization).
 */
const RESTRICTED: Readonly<Record<string, { dataElements?: string[] }>> = {
  'orders/getOrders': { dataElements: ORDER_DATA_ELEMENTS },
  'orders/getOrder': { dataElements: ORDER_DATA_ELEMENTS },
  'orders/getOrderItems': { dataElements: ['buyerInfo'] },
  'orders/getOrderBuyerInfo': {},
  'orders/getOrderAddress': {},
  'orders/getOrderItemsBuyerInfo': {},
  'orders/getOrderRegulatedInfo': {},
  'merchant-fulfillment/getShipment': {},
  'merchant-fulfillment/cancelShipment': {},
  'merchant-fulfillment/createShipment': {},
  'shipment-invoicing/getShipmentDetails': {},
  'reports/getReportDocument': {},
  'vendor-direct-fulfillment-orders/getOrders': {},
  'vendor-direct-fulfillment-orders/getOrder': {},
  'vendor-direct-fulfillment-shipping/getShippingLabels': {},
  'vendor-direct-fulfillment-shipping/getShippingLabel': {},
  'vendor-direct-fulfillment-shipping/getPackingSlips': {},
  'vendor-direct-fulfillment-shipping/getPackingSlip': {},
  'vendor-direct-fulfillment-shipping/getCustomerInvoices': {},
  'vendor-direct-fulfillment-shipping/getCustomerInvoice': {},
  'vendor-direct-fulfillment-shipping/createShippingLabels': {},
  'easy-ship/createScheduledPackageBulk': {},
}

/** The restricted-data rule only holds for Orders v0; the 2026-01-01 Orders API is not in the SDK's list. */
const RESTRICTED_VERSIONS: Readonly<Record<string, readonly string[]>> = { orders: ['v0'] }

/**
 * POSTs that only read (estimates, previews, batch lookups, searches), keyed `api/operationId`. Conservative:
 * anything that creates, submits, confirms or sends is left out.
 */
const READ_ONLY_POSTS = new Set([
  'product-pricing/getItemOffersBatch',
  'product-pricing/getListingOffersBatch',
  'product-pricing/getFeaturedOfferExpectedPriceBatch',
  'product-pricing/getCompetitiveSummary',
  'product-fees/getMyFeesEstimateForSKU',
  'product-fees/getMyFeesEstimateForASIN',
  'product-fees/getMyFeesEstimates',
  'fulfillment-outbound/getFulfillmentPreview',
  'fulfillment-outbound/deliveryOffers',
  'fulfillment-outbound/getOrderPreview',
  'fulfillment-outbound/getOffers',
  'merchant-fulfillment/getEligibleShipmentServices',
  'merchant-fulfillment/getAdditionalSellerInputs',
  'replenishment/getSellingPartnerMetrics',
  'replenishment/listOfferMetrics',
  'replenishment/listOffers',
  'shipping/getRates',
  'aplus-content/validateContentDocumentAsinRelations',
  'amazon-warehousing-and-distribution/checkInboundEligibility',
  'services/getRangeSlotCapacity',
  'services/getFixedSlotCapacity',
  'easy-ship/listHandoverSlots',
])

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const

interface ModelOperation {
  operationId?: unknown
  description?: unknown
}

function git(dir: string, args: string[]): string {
  return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
}

/** `orders-api-model` → `orders`; folders without the suffix keep their name. */
function apiOf(file: string): string {
  const folder = file.split('/')[1] ?? file
  return folder.replace(/-api-model$/, '').replace(/-model$/, '')
}

type Plan = { rate: number; burst: number; planSource?: 'default-of-several' | 'unpublished' }

/** The plan table in an operation's description: a single row, or several rows of which `Default` is used. */
function planOf(description: string): Plan | undefined {
  const header = /\|\s*(?:Plan type\s*\|\s*)?Rate \(requests per second\)\s*\|\s*Burst\s*\|/i.exec(
    description,
  )
  if (!header) return undefined
  const rows = description
    .slice(header.index + header[0].length)
    .split('\n')
    .map((line) => line.trim())
  const cells: string[][] = []
  for (const row of rows.slice(1)) {
    if (/^\|[\s|:-]+\|$/.test(row)) continue
    if (!row.startsWith('|')) break
    cells.push(
      row
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    )
  }
  const numeric = (row: readonly string[]): Plan | undefined => {
    const rate = Number(row.at(-2))
    const burst = Number(row.at(-1))
    return rate > 0 && Number.isInteger(burst) && burst >= 1 ? { rate, burst } : undefined
  }
  if (cells.length === 1 && cells[0]) return numeric(cells[0])
  const row = cells.find((candidate) => candidate[0]?.toLowerCase() === 'default')
  const plan = row && numeric(row)
  return plan && { ...plan, planSource: 'default-of-several' }
}

function derive(dir: string, notes: string[]): DerivedOperation[] {
  const files = git(dir, ['ls-tree', '-r', '--name-only', 'HEAD', 'models'])
    .split('\n')
    .filter((file) => file.endsWith('.json'))
    .sort()
  const operations: DerivedOperation[] = []
  for (const file of files) {
    const model = JSON.parse(git(dir, ['show', `HEAD:${file}`])) as {
      info?: { version?: unknown }
      paths?: Record<string, Record<string, ModelOperation>>
    }
    const api = apiOf(file)
    const version = typeof model.info?.version === 'string' ? model.info.version : basename(file, '.json')
    for (const [path, item] of Object.entries(model.paths ?? {})) {
      for (const method of METHODS) {
        const op = item[method]
        if (!op || typeof op.operationId !== 'string') continue
        const operationId = op.operationId
        const key = `${api}/${operationId}`
        // A few descriptions carry the two characters `\n` instead of line breaks.
        const description = typeof op.description === 'string' ? op.description.replaceAll('\\n', '\n') : ''
        let plan = planOf(description)
        if (!plan) {
          plan = { ...FALLBACK_PLAN, planSource: 'unpublished' }
          notes.push(
            `${api} ${version} ${operationId}: no usable plan published; fallback ${FALLBACK_PLAN.rate}/${FALLBACK_PLAN.burst}`,
          )
        } else if (plan.planSource) {
          notes.push(
            `${api} ${version} ${operationId}: several plans published; using Default ${plan.rate}/${plan.burst}`,
          )
        }
        const restricted = RESTRICTED[key]
        const restrictedHere = restricted && (RESTRICTED_VERSIONS[api]?.includes(version) ?? true)
        operations.push({
          api,
          version,
          operationId,
          name: operationId,
          method: method.toUpperCase(),
          path,
          ...plan,
          ...(restrictedHere ? { restricted } : {}),
          ...(method === 'post' && READ_ONLY_POSTS.has(key) ? { idempotent: true as const } : {}),
        })
      }
    }
  }
  qualifyCollidingNames(operations)
  return operations
}

/**
 * Names must be unique (they key limiter buckets and plan overrides), but models reuse operationIds (getOrders
 * is Orders v0 and Vendor Direct Fulfillment). Colliding ones become `api.version.operationId`, and, where even
 * that collides (one model using an operationId twice), `api.version.operationId.METHOD`.
 */
function qualifyCollidingNames(operations: DerivedOperation[]): void {
  const rename = (nameOf: (op: DerivedOperation) => string): void => {
    const counts = new Map<string, number>()
    for (const op of operations) counts.set(op.name, (counts.get(op.name) ?? 0) + 1)
    for (const op of operations) if ((counts.get(op.name) ?? 0) > 1) op.name = nameOf(op)
  }
  rename((op) => `${op.api}.${op.version}.${op.operationId}`)
  rename((op) => `${op.api}.${op.version}.${op.operationId}.${op.method}`)
}

function render(operations: readonly DerivedOperation[], commit: string, date: string): string {
  const lines = operations.map((op) => `  ${JSON.stringify(op)},`)
  return `// Generated by scripts/derive-usage-plans.ts, then formatted with biome.
/**
 * Amazon's published default usage plans for every SP-API operation, as data.
 *
 * Source: https://github.com/amzn/selling-partner-api-models, commit ${commit} (${date}), every
 * JSON model under models/. Derived by scripts/derive-usage-plans.ts (regenerate with it; do not edit by hand): method, path
 * and operationId from the model, rate and burst from the "Usage Plan" table in the operation's description.
 * \`planSource: 'default-of-several'\`: the description lists several plans; the Default row is used.
 * \`planSource: 'unpublished'\`: no usable plan is published; a fallback of ${FALLBACK_PLAN.rate} rps, burst ${FALLBACK_PLAN.burst} is used.
 * \`restricted\` (../shared/spapi-facts.md §6.3) and \`idempotent\` (POSTs that only read) are our judgement, listed
 * in the script. \`name\` is the operationId, qualified as \`api.version.operationId\` where models share one.
 */
import type { SpApiOperation } from './operations.ts'

export const USAGE_PLANS: readonly SpApiOperation[] = [
${lines.join('\n')}
]
`
}

function main(): void {
  const [dir, out] = process.argv.slice(2)
  if (!dir) {
    process.stderr.write('usage: node scripts/derive-usage-plans.ts <models git dir> [out file]\n')
    process.exit(2)
  }
  const [commit = '', date = ''] = git(dir, ['log', '-1', '--format=%H %cs', 'HEAD']).trim().split(' ')
  const notes: string[] = []
  const text = render(derive(dir, notes), commit, date)
  for (const note of notes) process.stderr.write(`${note}\n`)
  if (out) writeFileSync(out, text)
  else process.stdout.write(text)
}

main()
