/**
 * The Amazon simulator: a local stand-in for Amazon's side of the SP-API authorization workflows
 * (Seller/Vendor Central consent pages, the Appstore and Manage Your Apps flows, the LWA token endpoint
 * and a sliver of SP-API), plus a JSON control API. See docs/decisions/0003-simulator-assumptions.md.
 */
export { createSimulator } from './app.ts'
export { OLD_SECRET_GRACE_MS, SECRET_LIFETIME_MS } from './client-secrets.ts'
export { type DevAppOptions, generateDevApp } from './dev-app.ts'
export {
  NEW_SECRET_TYPE,
  PAYLOAD_VERSION,
  SECRET_EXPIRY_TYPE,
  type SpapiNotification,
} from './notifications.ts'
export { type ProxyEvent, type SimulatorTlsServerOptions, startSimulatorTlsServer } from './proxy.ts'
export { ROTATION_INTERVAL_MS, ROTATION_PATH, ROTATION_SCOPE } from './rotation.ts'
export {
  appstoreConsentPath,
  appstorePath,
  type CentralHostInfo,
  CONTROL_ENDPOINTS,
  CONTROL_PREFIX,
  type ControlEndpoint,
  centralHostInfo,
  confirmPath,
  consentPath,
  controlPath,
  LWA_HOST,
  MARKETPLACE_PARTICIPATIONS_PATH,
  manageAppsPath,
  type SpapiHostInfo,
  simulatorUrls,
  spapiHostInfo,
  spapiPath,
  TOKEN_PATH,
} from './routes.ts'
export { type SimulatorServer, type SimulatorServerOptions, startSimulatorServer } from './server.ts'
export { SPAPI_DENIED } from './spapi.ts'
export { prepareSimulatorTls, type SimulatorTls, simulatedAmazonHosts } from './tls.ts'
export { GRANTLESS_SCOPES } from './token-grants.ts'
export {
  type ClientSecretInfo,
  GRANT_TYPES,
  type GrantType,
  type NotificationDelivery,
  type NotificationTarget,
  type SecretExpiryOptions,
  type SimulatedApp,
  type SimulatedClientSecret,
  type Simulator,
  type SimulatorOptions,
  type TokenEndpointCounters,
  type TokenFaults,
} from './types.ts'
