/**
 * `sp-connect/store`: the storage contract a team implements to bring its own database. `Store` is the whole
 * contract; `ApiKeyStore`, `LoginRequestStore` and `OperatorStore` are the role stores it carries. Times are
 * milliseconds since the epoch; the store only ever sees ciphertexts and SHA-256 hashes, never a token.
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
export type * from './store.ts'
export { APP_SECRET_STATES, AUTH_FLOWS, CONNECTION_STATUSES, DELIVERY_STATUSES } from './store.ts'
