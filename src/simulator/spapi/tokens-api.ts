/**
 * Tokens API 2021-03-01, createRestrictedDataToken (spapi-facts.md §6.3): up to 50 restricted resources, each a
 * method, a path naming a restricted operation (a concrete id or a `{placeholder}` for any) and, for getOrders,
 * getOrder and getOrderItems, the data elements asked for. The RDT is bound to the caller's app and seller (or
 * to the delegatee app named by `targetApplication`) and lasts one hour.
 */
import { z } from 'zod'
import { findOperation } from '../../core/spapi/operations.ts'
import type { OperationImpl, SellerCaller, SpapiCall } from './call.ts'
import { RDT_TTL_S, type RdtResource, signRdt } from './rdt.ts'
import { invalidInput, spapiResponse } from './respond.ts'

const MAX_RESOURCES = 50
const MAX_PATH_LENGTH = 1024

const requestBody = z.object({
  restrictedResources: z
    .array(
      z.object({
        method: z.enum(['GET', 'PUT', 'POST', 'DELETE']),
        path: z.string().min(2).max(MAX_PATH_LENGTH).startsWith('/'),
        dataElements: z.array(z.string()).max(10).optional(),
      }),
    )
    .min(1)
    .max(MAX_RESOURCES),
  targetApplication: z.string().min(1).max(256).optional(),
})

type Call = SpapiCall & { readonly caller: SellerCaller }

async function createRestrictedDataToken(call: Call): Promise<Response> {
  const { c, rate, ctx, caller } = call
  if (caller.rdt !== undefined) return invalidInput(c, 'A Restricted Data Token cannot create another.', rate)
  let raw: unknown
  try {
    raw = JSON.parse(await c.req.text())
  } catch {
    return invalidInput(c, 'The request body is not valid JSON.', rate)
  }
  const parsed = requestBody.safeParse(raw)
  if (!parsed.success) {
    const tooMany = parsed.error.issues.some((i) => i.code === 'too_big' && i.path.length === 1)
    return invalidInput(
      c,
      tooMany ? `At most ${MAX_RESOURCES} restrictedResources are allowed.` : 'Invalid request body.',
      rate,
    )
  }
  const resources: RdtResource[] = []
  for (const [index, wanted] of parsed.data.restrictedResources.entries()) {
    const match = findOperation(wanted.method, wanted.path)
    if (!match?.operation.restricted) {
      return invalidInput(c, `restrictedResources[${index}] is not a restricted operation.`, rate)
    }
    const allowed = match.operation.restricted.dataElements ?? []
    const elements = [...new Set(wanted.dataElements ?? [])]
    const unknown = elements.find((e) => !allowed.includes(e))
    if (unknown !== undefined) {
      return invalidInput(
        c,
        `restrictedResources[${index}].dataElements has a value this operation does not take.`,
        rate,
      )
    }
    resources.push(
      elements.length > 0
        ? { m: wanted.method, p: wanted.path, d: elements }
        : { m: wanted.method, p: wanted.path },
    )
  }
  let clientId = caller.clientId
  if (parsed.data.targetApplication !== undefined) {
    const target = ctx.registry.byAppId(parsed.data.targetApplication)
    if (!target) return invalidInput(c, 'targetApplication is not a known application.', rate)
    clientId = target.clientId
  }
  const now = ctx.now()
  const restrictedDataToken = signRdt(ctx.signingSecret, {
    c: clientId,
    sp: caller.sellingPartnerId,
    r: caller.region,
    gn: caller.grantSerial,
    n: ctx.state.nextSerial(),
    iat: now,
    exp: now + RDT_TTL_S * 1000,
    res: resources,
  })
  return spapiResponse(c, 200, { restrictedDataToken, expiresIn: RDT_TTL_S }, rate)
}

export const TOKENS_OPERATIONS: Readonly<Record<string, OperationImpl<SellerCaller>>> = {
  createRestrictedDataToken: { auth: 'seller', handle: createRestrictedDataToken },
}
