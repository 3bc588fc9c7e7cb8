/**
 * Runs one unmodified third-party SP-API client, as its README shows, against "Amazon": whatever the
 * environment routes Amazon's host names to (HTTPS_PROXY, or /etc/hosts in a private namespace).
 * Credentials come from the environment (simulator-issued, made up). Prints one JSON line with what the
 * client got back; exits non-zero with the client's error message otherwise.
 *
 * Usage: node run-client.mjs <amazon-sp-api | sp-api-sdk | official-sdk>
 * Env: SIM_CLIENT_ID, SIM_CLIENT_SECRET, SIM_REFRESH_TOKEN, SIM_OPERATIONS (comma-separated, optional:
 * getOrders, getAccount in addition to getMarketplaceParticipations).
 */
const clientId = process.env.SIM_CLIENT_ID ?? ''
const clientSecret = process.env.SIM_CLIENT_SECRET ?? ''
const refreshToken = process.env.SIM_REFRESH_TOKEN ?? ''
const extra = (process.env.SIM_OPERATIONS ?? '').split(',').filter((op) => op !== '')
const US = 'ATVPDKIKX0DER'
const CREATED_AFTER = '2020-01-01T00:00:00Z'

/** amz-tools' `amazon-sp-api`: node:https with a fixed host per region, no proxy support of its own. */
async function amazonSpApi() {
  const { default: SellingPartner } = await import('amazon-sp-api')
  const sp = new SellingPartner({
    region: 'na',
    refresh_token: refreshToken,
    credentials: { SELLING_PARTNER_APP_CLIENT_ID: clientId, SELLING_PARTNER_APP_CLIENT_SECRET: clientSecret },
    options: { auto_request_tokens: true, auto_request_throttled: false },
  })
  const out = {}
  out.getMarketplaceParticipations = await sp.callAPI({
    operation: 'getMarketplaceParticipations',
    endpoint: 'sellers',
  })
  if (extra.includes('getOrders')) {
    out.getOrders = await sp.callAPI({
      operation: 'getOrders',
      endpoint: 'orders',
      query: { MarketplaceIds: [US], CreatedAfter: CREATED_AFTER },
    })
  }
  if (extra.includes('getAccount')) {
    out.getAccount = await sp.callAPI({ operation: 'getAccount', endpoint: 'sellers' })
  }
  return out
}

/** bizon's `@sp-api-sdk/*`: axios, which tunnels through HTTPS_PROXY itself. */
async function spApiSdk() {
  const { SellingPartnerApiAuth } = await import('@sp-api-sdk/auth')
  const { createAxiosInstance } = await import('@sp-api-sdk/common')
  const { OrdersApiClient } = await import('@sp-api-sdk/orders-api-v0')
  const auth = new SellingPartnerApiAuth({ clientId, clientSecret, refreshToken })
  // The SDK publishes no Sellers API package; its own axios factory is what every generated client uses.
  const { axios, endpoint } = createAxiosInstance({ auth, region: 'na' }, [])
  const out = {}
  out.getMarketplaceParticipations = (
    await axios.get(`${endpoint}/sellers/v1/marketplaceParticipations`)
  ).data
  if (extra.includes('getOrders')) {
    const orders = new OrdersApiClient({ auth, region: 'na' })
    out.getOrders = (await orders.getOrders({ marketplaceIds: [US], createdAfter: CREATED_AFTER })).data
  }
  if (extra.includes('getAccount')) {
    out.getAccount = (await axios.get(`${endpoint}/sellers/v1/account`)).data
  }
  return out
}

/** Amazon's `@amazon-sp-api-release/amazon-sp-api-sdk-js`: superagent on node:https. */
async function officialSdk() {
  const { SellersSpApi, OrdersSpApi } = await import('@amazon-sp-api-release/amazon-sp-api-sdk-js')
  const client = new SellersSpApi.ApiClient('https://sellingpartnerapi-na.amazon.com')
  client.enableAutoRetrievalAccessToken(clientId, clientSecret, refreshToken)
  const sellers = new SellersSpApi.SellersApi(client)
  const out = {}
  out.getMarketplaceParticipations = await sellers.getMarketplaceParticipations()
  if (extra.includes('getOrders')) {
    const ordersClient = new OrdersSpApi.ApiClient('https://sellingpartnerapi-na.amazon.com')
    ordersClient.enableAutoRetrievalAccessToken(clientId, clientSecret, refreshToken)
    out.getOrders = await new OrdersSpApi.OrdersV0Api(ordersClient).getOrders([US], {
      createdAfter: CREATED_AFTER,
    })
  }
  if (extra.includes('getAccount')) out.getAccount = await sellers.getAccount()
  return out
}

const clients = { 'amazon-sp-api': amazonSpApi, 'sp-api-sdk': spApiSdk, 'official-sdk': officialSdk }

export async function runClient(name) {
  const run = clients[name]
  if (run === undefined) throw new Error(`unknown client ${name}`)
  return JSON.parse(JSON.stringify(await run()))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.stdout.write(`${JSON.stringify(await runClient(process.argv[2] ?? ''))}\n`)
  } catch (error) {
    const status = error?.response?.status ?? error?.status ?? error?.statusCode
    process.stderr.write(`client failed: ${status ?? ''} ${error?.code ?? ''} ${error?.message ?? error}\n`)
    process.exitCode = 1
  }
}
