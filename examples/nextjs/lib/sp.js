// One sp-connect per server process: route modules may be loaded more than once (dev reloads), the runtime
// (database, background refresher, simulator) must not be.
import { startSpConnect } from './sp-connect.js'

export function sp() {
  globalThis.spConnect ??= startSpConnect()
  return globalThis.spConnect
}
