/**
 * Orders API v0 (getOrders, getOrder, getOrderItems, getOrderAddress, getOrderBuyerInfo) over fake orders that
 * are a pure function of the seller id and time: the timeline is cut into 6-hour slots, and in each slot a seller
 * has at most one order, whose id, marketplace (one of the seller's participations), contents, buyer and address
 * come from a hash of (seller, slot). So every seller has its own stable history at any simulator clock, and an
 * order id encodes its slot, which lets getOrder find it without storage.
 *
 * Personal data (buyer name and e-mail, the full shipping address, tax data, gift messages) is only returned to a
 * call made with a Restricted Data Token carrying the matching `dataElements` (for getOrderAddress and
 * getOrderBuyerInfo the RDT itself is enough); with a plain LWA token those fields are left out, as Amazon does
 * (the address keeps city, region, postal code and country).
 */
import { createHash } from 'node:crypto'
import type { Context } from 'hono'
import { z } from 'zod'
import type { OperationImpl, SellerCaller, SpapiCall } from './call.ts'
import { queryList } from './call.ts'
import { invalidInput, notFound, spapiResponse } from './respond.ts'
import { sellerParticipations } from './sellers.ts'

const SLOT_MS = 6 * 3600_000
/** Amazon refuses a CreatedAfter later than two minutes before now, and answers up to then. */
const RECENT_MS = 2 * 60_000
const DAY_MS = 24 * 3600_000
const MAX_PAGE = 100
const MAX_SLOTS_PER_PAGE = 20_000
const ORDER_ID = /^(\d{3})-(\d{7})-(\d{7})$/

type Call = SpapiCall & { readonly caller: SellerCaller }

const FIRST_NAMES = ['Alex', 'Sam', 'Jordan', 'Taylor', 'Morgan', 'Casey', 'Robin', 'Jamie', 'Kim', 'Noa']
const LAST_NAMES = ['Smith', 'Garcia', 'Müller', 'Rossi', 'Tanaka', 'Martin', 'Kowalski', 'Silva', 'Brown']
const CITIES = [
  ['SEATTLE', 'WA', '98121'],
  ['AUSTIN', 'TX', '73301'],
  ['DENVER', 'CO', '80202'],
  ['BOSTON', 'MA', '02108'],
  ['PORTLAND', 'OR', '97201'],
] as const
const PRODUCTS = [
  ['B00EXAMPLE1', 'Stainless Steel Water Bottle, 750 ml', 1899],
  ['B00EXAMPLE2', 'USB-C Charging Cable, 2 m', 999],
  ['B00EXAMPLE3', 'Cotton Tote Bag', 1450],
  ['B00EXAMPLE4', 'Ceramic Coffee Mug, 350 ml', 1250],
  ['B00EXAMPLE5', 'Notebook, A5, dotted', 799],
] as const

interface FakeItem {
  readonly asin: string
  readonly title: string
  readonly sku: string
  readonly itemId: string
  readonly quantity: number
  readonly unitCents: number
  readonly gift: boolean
}

interface FakeOrder {
  readonly id: string
  readonly slot: number
  readonly purchasedAt: number
  readonly marketplaceId: string
  readonly salesChannel: string
  readonly currency: string
  readonly countryCode: string
  readonly channel: 'MFN' | 'AFN'
  readonly business: boolean
  readonly prime: boolean
  readonly canceled: boolean
  readonly items: readonly FakeItem[]
  readonly buyer: { readonly name: string; readonly email: string }
  readonly address: {
    readonly line1: string
    readonly city: string
    readonly region: string
    readonly postal: string
    readonly phone: string
  }
}

function digest(...parts: (string | number)[]): Buffer {
  return createHash('sha256').update(parts.join('\n')).digest()
}

function digits(bytes: Buffer, offset: number, count: number): string {
  return String(bytes.readUInt32BE(offset) % 10 ** count).padStart(count, '0')
}

function pick<T>(list: readonly T[], byte: number | undefined): T {
  return list[(byte ?? 0) % list.length] as T
}

/** The seller's order in a slot, or undefined when the seller had none then. */
function orderInSlot(
  sellingPartnerId: string,
  participations: ReturnType<typeof sellerParticipations>,
  slot: number,
): FakeOrder | undefined {
  const h = digest('order', sellingPartnerId, slot)
  // About three slots in five have an order.
  if ((h[0] ?? 0) >= 154) return undefined
  const market = pick(participations, h[1]).marketplace
  const itemCount = 1 + ((h[2] ?? 0) % 3)
  const items: FakeItem[] = []
  for (let i = 0; i < itemCount; i++) {
    const ih = digest('item', sellingPartnerId, slot, i)
    const [asin, title, unitCents] = pick(PRODUCTS, ih[0])
    items.push({
      asin,
      title,
      sku: `SKU-${asin.slice(-4)}-${digits(ih, 4, 3)}`,
      itemId: digits(ih, 8, 7) + digits(ih, 12, 7),
      quantity: 1 + ((ih[1] ?? 0) % 2),
      unitCents,
      gift: (ih[2] ?? 0) < 26,
    })
  }
  const first = pick(FIRST_NAMES, h[3])
  const last = pick(LAST_NAMES, h[4])
  const [city, region_, postal] = pick(CITIES, h[5])
  return {
    id: `${100 + ((h[6] ?? 0) % 900)}-${String(slot).padStart(7, '0')}-${digits(h, 8, 7)}`,
    slot,
    purchasedAt: slot * SLOT_MS + (h.readUInt32BE(12) % SLOT_MS),
    marketplaceId: market.id,
    salesChannel: market.name,
    currency: market.defaultCurrencyCode,
    countryCode: market.countryCode,
    channel: (h[16] ?? 0) < 90 ? 'AFN' : 'MFN',
    business: (h[17] ?? 0) < 30,
    prime: (h[18] ?? 0) < 100,
    canceled: (h[19] ?? 0) < 12,
    items,
    buyer: {
      name: `${first} ${last}`,
      email: `${digits(h, 20, 10)}x${digits(h, 24, 4)}@marketplace.amazon.com`,
    },
    address: {
      line1: `${1 + ((h[28] ?? 0) % 200)} Example Street`,
      city,
      region: region_,
      postal,
      phone: `+1 555-01${digits(h, 28, 2)}`,
    },
  }
}

function findOrder(call: Call, orderId: string): FakeOrder | undefined {
  const match = ORDER_ID.exec(orderId)
  if (!match) return undefined
  const slot = Number(match[2])
  const participations = sellerParticipations(call.caller.sellingPartnerId, call.caller.region)
  const order = orderInSlot(call.caller.sellingPartnerId, participations, slot)
  return order && order.id === orderId && order.purchasedAt <= call.ctx.now() ? order : undefined
}

function statusOf(order: FakeOrder, now: number): { status: string; updatedAt: number } {
  const age = now - order.purchasedAt
  if (order.canceled) return { status: 'Canceled', updatedAt: order.purchasedAt + 3600_000 }
  if (age < 30 * 60_000) return { status: 'Pending', updatedAt: order.purchasedAt }
  if (age < DAY_MS) return { status: 'Unshipped', updatedAt: order.purchasedAt + 30 * 60_000 }
  return { status: 'Shipped', updatedAt: order.purchasedAt + DAY_MS }
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
const money = (currency: string, cents: number) => ({
  CurrencyCode: currency,
  Amount: (cents / 100).toFixed(2),
})

/** The data elements this call may see: those of its RDT resource; none with a plain LWA token. */
function elements(call: Call): ReadonlySet<string> {
  return new Set(call.caller.rdt?.d ?? [])
}

function shippingAddress(order: FakeOrder, full: boolean) {
  const base = {
    City: order.address.city,
    StateOrRegion: order.address.region,
    PostalCode: order.address.postal,
    CountryCode: order.countryCode,
  }
  if (!full) return base
  return {
    Name: order.buyer.name,
    AddressLine1: order.address.line1,
    ...base,
    Phone: order.address.phone,
    AddressType: 'Residential',
  }
}

function orderBody(order: FakeOrder, now: number, seen: ReadonlySet<string>) {
  const { status, updatedAt } = statusOf(order, now)
  const units = order.items.reduce((sum, item) => sum + item.quantity, 0)
  const total = order.items.reduce((sum, item) => sum + item.quantity * item.unitCents, 0)
  const shipped = status === 'Shipped'
  const body: Record<string, unknown> = {
    AmazonOrderId: order.id,
    PurchaseDate: iso(order.purchasedAt),
    LastUpdateDate: iso(Math.min(updatedAt, now)),
    OrderStatus: status,
    FulfillmentChannel: order.channel,
    SalesChannel: order.salesChannel,
    ShipServiceLevel: 'Std Dom',
    NumberOfItemsShipped: shipped ? units : 0,
    NumberOfItemsUnshipped: shipped || status === 'Canceled' ? 0 : units,
    PaymentMethod: 'Other',
    PaymentMethodDetails: ['Standard'],
    MarketplaceId: order.marketplaceId,
    ShipmentServiceLevelCategory: 'Standard',
    OrderType: 'StandardOrder',
    EarliestShipDate: iso(order.purchasedAt + DAY_MS),
    LatestShipDate: iso(order.purchasedAt + 2 * DAY_MS),
    IsBusinessOrder: order.business,
    IsPrime: order.prime,
    IsGlobalExpressEnabled: false,
    IsPremiumOrder: false,
    IsSoldByAB: false,
    IsReplacementOrder: false,
    IsISPU: false,
    IsAccessPointOrder: false,
    HasRegulatedItems: false,
  }
  // Amazon leaves the total out of pending orders.
  if (status !== 'Pending') body['OrderTotal'] = money(order.currency, total)
  if (status !== 'Pending' && status !== 'Canceled') {
    body['ShippingAddress'] = shippingAddress(order, seen.has('shippingAddress'))
  }
  if (seen.has('buyerInfo')) {
    body['BuyerInfo'] = { BuyerEmail: order.buyer.email, BuyerName: order.buyer.name }
  }
  if (seen.has('buyerTaxInformation') && order.business) {
    body['BuyerTaxInformation'] = {
      BuyerLegalCompanyName: `${order.buyer.name.split(' ')[1] ?? 'Example'} Trading Ltd`,
      BuyerBusinessAddress: `${order.address.line1}, ${order.address.city}`,
      BuyerTaxRegistrationId: `TAX${order.id.replaceAll('-', '').slice(0, 10)}`,
      BuyerTaxOffice: order.address.city,
    }
  }
  return body
}

const isoDate = z.iso.datetime({ offset: true }).or(z.iso.date())
const nextTokenSchema = z.object({
  s: z.number().int().nonnegative(),
  by: z.enum(['created', 'updated']),
  from: z.number(),
  to: z.number(),
  mp: z.array(z.string()).max(50),
  st: z.array(z.string()),
  fc: z.array(z.string()),
  n: z.number().int().min(1).max(MAX_PAGE),
})
type Listing = z.infer<typeof nextTokenSchema>

function encodeNextToken(listing: Listing): string {
  return Buffer.from(JSON.stringify(listing), 'utf8').toString('base64url')
}

function decodeNextToken(token: string): Listing | undefined {
  try {
    const parsed = nextTokenSchema.safeParse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

function parseDate(c: Context, name: string): number | undefined | null {
  const value = c.req.query(name)
  if (value === undefined) return undefined
  return isoDate.safeParse(value).success ? Date.parse(value) : null
}

/** The listing a first getOrders call asks for, or the 400 message when its query is not acceptable. */
function newListing(call: Call, marketplaceIds: string[]): Listing | string {
  const { c } = call
  const now = call.ctx.now()
  const dates = {
    createdAfter: parseDate(c, 'CreatedAfter'),
    createdBefore: parseDate(c, 'CreatedBefore'),
    updatedAfter: parseDate(c, 'LastUpdatedAfter'),
    updatedBefore: parseDate(c, 'LastUpdatedBefore'),
  }
  for (const [name, value] of Object.entries(dates)) {
    if (value === null) return `Invalid date in ${name}. Use ISO 8601.`
  }
  const { createdAfter, createdBefore, updatedAfter, updatedBefore } = dates
  if (createdAfter === undefined && updatedAfter === undefined) {
    return 'Either CreatedAfter or LastUpdatedAfter must be specified.'
  }
  if (createdAfter != null && updatedAfter != null) {
    return 'CreatedAfter and LastUpdatedAfter cannot both be specified.'
  }
  const by = createdAfter != null ? 'created' : 'updated'
  const from = (by === 'created' ? createdAfter : updatedAfter) ?? 0
  const before = by === 'created' ? createdBefore : updatedBefore
  const latest = now - RECENT_MS
  if (from > latest)
    return `${by === 'created' ? 'CreatedAfter' : 'LastUpdatedAfter'} must be at least two minutes in the past.`
  const to = before == null ? latest : Math.min(before, latest)
  if (to < from) return 'The end of the date range is before its start.'
  const pageSize = c.req.query('MaxResultsPerPage')
  const n = pageSize === undefined ? MAX_PAGE : Number(pageSize)
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) return 'MaxResultsPerPage must be between 1 and 100.'
  const firstSlot = Math.max(0, Math.floor((by === 'created' ? from : from - 2 * DAY_MS) / SLOT_MS))
  return {
    s: firstSlot,
    by,
    from,
    to,
    mp: marketplaceIds,
    st: queryList(c, 'OrderStatuses'),
    fc: queryList(c, 'FulfillmentChannels'),
    n,
  }
}

async function getOrders(call: Call): Promise<Response> {
  const { c, rate } = call
  const now = call.ctx.now()
  const marketplaceIds = queryList(c, 'MarketplaceIds')
  if (marketplaceIds.length === 0) return invalidInput(c, 'MarketplaceIds is required.', rate)
  if (marketplaceIds.length > 50) return invalidInput(c, 'At most 50 MarketplaceIds are allowed.', rate)
  const token = c.req.query('NextToken')
  let listing: Listing | string
  if (token !== undefined) {
    listing = decodeNextToken(token) ?? 'Invalid NextToken.'
  } else {
    listing = newListing(call, marketplaceIds)
  }
  if (typeof listing === 'string') return invalidInput(c, listing, rate)
  const seen = elements(call)
  const orders: Record<string, unknown>[] = []
  const participations = sellerParticipations(call.caller.sellingPartnerId, call.caller.region)
  const lastSlot = Math.floor(listing.to / SLOT_MS)
  // A page also ends after this many slots (about 14 years), so no query walks the timeline for long.
  const walkEnd = Math.min(lastSlot, listing.s + MAX_SLOTS_PER_PAGE - 1)
  let slot = listing.s
  for (; slot <= walkEnd && orders.length < listing.n; slot++) {
    const order = orderInSlot(call.caller.sellingPartnerId, participations, slot)
    if (!order || !listing.mp.includes(order.marketplaceId)) continue
    const { status, updatedAt } = statusOf(order, now)
    const at = listing.by === 'created' ? order.purchasedAt : Math.min(updatedAt, now)
    if (at < listing.from || at > listing.to) continue
    if (listing.st.length > 0 && !listing.st.includes(status)) continue
    if (listing.fc.length > 0 && !listing.fc.includes(order.channel)) continue
    orders.push(orderBody(order, now, seen))
  }
  const payload: Record<string, unknown> = { Orders: orders }
  if (slot <= lastSlot) payload['NextToken'] = encodeNextToken({ ...listing, s: slot })
  payload[listing.by === 'created' ? 'CreatedBefore' : 'LastUpdatedBefore'] = iso(listing.to)
  return spapiResponse(c, 200, { payload }, rate)
}

function withOrder(handle: (call: Call, order: FakeOrder) => Response): OperationImpl<SellerCaller> {
  return {
    auth: 'seller',
    handle(call) {
      const order = findOrder(call, call.params['orderId'] ?? '')
      return order ? handle(call, order) : notFound(call.c, call.rate)
    },
  }
}

function orderItems(call: Call, order: FakeOrder) {
  const seen = elements(call)
  const { status } = statusOf(order, call.ctx.now())
  return order.items.map((item) => {
    const body: Record<string, unknown> = {
      ASIN: item.asin,
      SellerSKU: item.sku,
      OrderItemId: item.itemId,
      Title: item.title,
      QuantityOrdered: item.quantity,
      QuantityShipped: status === 'Shipped' ? item.quantity : 0,
      ItemPrice: money(order.currency, item.quantity * item.unitCents),
      ItemTax: money(order.currency, Math.round(item.quantity * item.unitCents * 0.08)),
      PromotionDiscount: money(order.currency, 0),
      IsGift: String(item.gift),
      ConditionId: 'New',
      ConditionSubtypeId: 'New',
      IsTransparency: false,
      ProductInfo: { NumberOfItems: '1' },
    }
    if (seen.has('buyerInfo') && item.gift) {
      body['BuyerInfo'] = { GiftMessageText: 'Happy birthday!', GiftWrapLevel: 'Classic' }
    }
    return body
  })
}

export const ORDERS_OPERATIONS: Readonly<Record<string, OperationImpl<SellerCaller>>> = {
  'orders.v0.getOrders': { auth: 'seller', handle: getOrders },
  'orders.v0.getOrder': withOrder((call, order) =>
    spapiResponse(call.c, 200, { payload: orderBody(order, call.ctx.now(), elements(call)) }, call.rate),
  ),
  getOrderItems: withOrder((call, order) =>
    spapiResponse(
      call.c,
      200,
      { payload: { AmazonOrderId: order.id, OrderItems: orderItems(call, order) } },
      call.rate,
    ),
  ),
  getOrderAddress: withOrder((call, order) =>
    spapiResponse(
      call.c,
      200,
      {
        payload: {
          AmazonOrderId: order.id,
          ShippingAddress: shippingAddress(order, call.caller.rdt !== undefined),
        },
      },
      call.rate,
    ),
  ),
  getOrderBuyerInfo: withOrder((call, order) => {
    const payload: Record<string, unknown> = { AmazonOrderId: order.id }
    if (call.caller.rdt !== undefined) {
      payload['BuyerEmail'] = order.buyer.email
      payload['BuyerName'] = order.buyer.name
    }
    return spapiResponse(call.c, 200, { payload }, call.rate)
  }),
}
