import type { Principal } from '../core/access/principal.ts'
import type { Runtime } from '../runtime.ts'

export interface ServerOptions {
  /** In dev, the dashboard links to the simulator's Appstore and Manage Your Apps pages. */
  readonly simulatorLinks?: { appstore: string; manageApps: string } | undefined
}

export interface ServerEnv {
  Variables: {
    runtime: Runtime
    options: ServerOptions
    apiKeyName: string
    /** The API key calling /v1 (set by the authentication middleware in routes/api.ts). */
    principal: Principal
  }
}
