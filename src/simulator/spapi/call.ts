/** What an implemented SP-API operation receives once the request is authenticated and within its plan. */
import type { Context } from 'hono'
import type { SpApiOperation } from '../../core/spapi/operations.ts'
import type { Region } from '../../domain/regions.ts'
import type { SimulatorContext } from '../context.ts'
import type { SpapiHostInfo } from '../routes.ts'
import type { RdtResource } from './rdt.ts'

export interface SellerCaller {
  readonly kind: 'seller'
  readonly clientId: string
  readonly sellingPartnerId: string
  readonly region: Region
  /** Serial of the grant behind the token (RDTs made from it are revoked with it). */
  readonly grantSerial: number
  /** Present when the call came with a Restricted Data Token: the resource of it that opened this call. */
  readonly rdt?: RdtResource
}

export interface GrantlessCaller {
  readonly kind: 'grantless'
  readonly clientId: string
  readonly scopes: readonly string[]
}

export interface SpapiCall {
  readonly c: Context
  readonly ctx: SimulatorContext
  readonly host: SpapiHostInfo
  readonly operation: SpApiOperation
  /** Decoded path parameters. */
  readonly params: Readonly<Record<string, string>>
  /** The plan's rate in force, for `x-amzn-RateLimit-Limit`. */
  readonly rate: number
  readonly caller: SellerCaller | GrantlessCaller
}

export interface OperationImpl<C extends SellerCaller | GrantlessCaller = SellerCaller | GrantlessCaller> {
  /** `seller`: a seller's LWA token (or an RDT); otherwise a grantless token carrying this scope. */
  readonly auth: 'seller' | { readonly grantlessScope: string }
  handle(call: SpapiCall & { readonly caller: C }): Response | Promise<Response>
}

/** Comma-separated (SP-API's style) or repeated query values, trimmed, empty ones dropped. */
export function queryList(c: Context, name: string): string[] {
  return (c.req.queries(name) ?? [])
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '')
}
