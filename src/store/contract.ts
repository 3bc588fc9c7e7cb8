/**
 * `sp-connect/store`: the storage contract a team implements to bring its own database. `Store` is the whole
 * contract, the composition of one interface per role, each documented where it is declared (store.ts):
 *
 * - `StoreLifecycle`: `migrate`, `pendingMigrations`, `close`;
 * - `AuthStateStore`: auth states and connect sessions (single-use, stored by hash);
 * - `ConnectionStore`: connections, their version-fenced token writes, refresh leases and change waits;
 * - `RefresherStore`: the background refresher's candidates and claims, re-authorization reminders;
 * - `EventStore`: the audit log and the webhook outbox (deliveries claimed under a lease);
 * - `AppSecretStore`: LWA client secrets received through rotation;
 * - `KeyRotationStore`: re-encryption of stored ciphertexts under a new key;
 *
 * and the role stores it carries as properties: `apiKeys` (`ApiKeyStore`), `loginRequests`
 * (`LoginRequestStore`), `operators` (`OperatorStore`), `rateBuckets` (`RateBucketStore`).
 * A module that needs one role can be written against that role alone. Times are milliseconds since the epoch;
 * the store only ever sees ciphertexts and SHA-256 hashes, never a token.
 *
 * Types only, plus the status vocabularies as constants: importing this loads no database driver (neither
 * `node:sqlite` nor `pg`).
 */
export type { ApiKeyRecord, ApiKeyStore, NewApiKey } from './api-key-store.ts'
export type {
  LoginRequestApproval,
  LoginRequestRecord,
  LoginRequestStatus,
  LoginRequestStore,
  NewLoginRequest,
} from './login-request-store.ts'
export type { OperatorAccountRecord, OperatorSessionRecord, OperatorStore } from './operator-store.ts'
export type { RateBucketRecord, RateBucketStore, Reservation, ReserveRequest } from './rate-bucket-store.ts'
export type * from './store.ts'
export { APP_SECRET_STATES, AUTH_FLOWS, CONNECTION_STATUSES, DELIVERY_STATUSES } from './store.ts'
