/**
 * Notifications API v1, the grantless destination operations (getDestinations, createDestination, getDestination,
 * deleteDestination). Destinations belong to the application (LWA client id) and the region's endpoint, and live
 * in the simulator's memory. Only grantless tokens with the `sellingpartnerapi::notifications` scope get here.
 */
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import type { GrantlessCaller, OperationImpl, SpapiCall } from './call.ts'
import { invalidInput, notFound, spapiErrors, spapiResponse } from './respond.ts'

const NOTIFICATIONS_SCOPE = 'sellingpartnerapi::notifications'
/** Amazon's limit is not published; this keeps one app from filling the simulator's memory. */
const MAX_DESTINATIONS_PER_APP = 100

interface Destination {
  readonly destinationId: string
  readonly name: string
  readonly resource:
    | { readonly sqs: { readonly arn: string } }
    | { readonly eventBridge: { readonly name: string; readonly region: string; readonly accountId: string } }
}

const createBody = z.object({
  name: z.string().min(1).max(256),
  resourceSpecification: z.union([
    z
      .object({
        sqs: z.object({
          arn: z
            .string()
            .max(1000)
            .regex(/^arn:aws:sqs:\S+:\S+:\S+$/),
        }),
      })
      .strict(),
    z
      .object({
        eventBridge: z.object({ region: z.string().min(1).max(64), accountId: z.string().regex(/^\d{12}$/) }),
      })
      .strict(),
  ]),
})

/** The destinations of every app, by `clientId region`. */
export class DestinationStore {
  readonly #byApp = new Map<string, Destination[]>()

  list(key: string): Destination[] {
    return this.#byApp.get(key) ?? []
  }

  add(key: string, destination: Destination): boolean {
    const list = this.list(key)
    if (list.length >= MAX_DESTINATIONS_PER_APP) return false
    this.#byApp.set(key, [...list, destination])
    return true
  }

  remove(key: string, destinationId: string): boolean {
    const list = this.list(key)
    const kept = list.filter((d) => d.destinationId !== destinationId)
    this.#byApp.set(key, kept)
    return kept.length !== list.length
  }
}

type Call = SpapiCall & { readonly caller: GrantlessCaller }

const keyOf = (call: Call) => `${call.caller.clientId} ${call.host.region}`
const grantless = { grantlessScope: NOTIFICATIONS_SCOPE } as const

async function createDestination(call: Call): Promise<Response> {
  const { c, rate } = call
  let raw: unknown
  try {
    raw = JSON.parse(await c.req.text())
  } catch {
    return invalidInput(c, 'The request body is not valid JSON.', rate)
  }
  const parsed = createBody.safeParse(raw)
  if (!parsed.success) return invalidInput(c, 'Invalid destination request.', rate)
  const spec = parsed.data.resourceSpecification
  const store = call.ctx.state.spapi.destinations
  const key = keyOf(call)
  // Amazon allows one destination per SQS queue or EventBridge account and region.
  const duplicate = store
    .list(key)
    .some((d) =>
      'sqs' in spec
        ? 'sqs' in d.resource && d.resource.sqs.arn === spec.sqs.arn
        : 'eventBridge' in d.resource &&
          d.resource.eventBridge.accountId === spec.eventBridge.accountId &&
          d.resource.eventBridge.region === spec.eventBridge.region,
    )
  if (duplicate) {
    return spapiErrors(
      c,
      409,
      [{ code: 'Conflict', message: 'A destination for this resource already exists.' }],
      rate,
    )
  }
  const destinationId = randomUUID()
  const resource: Destination['resource'] =
    'sqs' in spec
      ? { sqs: { arn: spec.sqs.arn } }
      : {
          eventBridge: {
            name: `aws.partner/sellingpartnerapi.amazon.com/${spec.eventBridge.accountId}/${destinationId}`,
            region: spec.eventBridge.region,
            accountId: spec.eventBridge.accountId,
          },
        }
  const destination: Destination = { destinationId, name: parsed.data.name, resource }
  if (!store.add(key, destination)) return invalidInput(c, 'Too many destinations.', rate)
  return spapiResponse(c, 200, { payload: destination }, rate)
}

export const DESTINATION_OPERATIONS: Readonly<Record<string, OperationImpl<GrantlessCaller>>> = {
  getDestinations: {
    auth: grantless,
    handle: (call) =>
      spapiResponse(call.c, 200, { payload: call.ctx.state.spapi.destinations.list(keyOf(call)) }, call.rate),
  },
  createDestination: { auth: grantless, handle: createDestination },
  getDestination: {
    auth: grantless,
    handle(call) {
      const found = call.ctx.state.spapi.destinations
        .list(keyOf(call))
        .find((d) => d.destinationId === call.params['destinationId'])
      return found ? spapiResponse(call.c, 200, { payload: found }, call.rate) : notFound(call.c, call.rate)
    },
  },
  deleteDestination: {
    auth: grantless,
    handle(call) {
      const removed = call.ctx.state.spapi.destinations.remove(
        keyOf(call),
        call.params['destinationId'] ?? '',
      )
      return removed ? spapiResponse(call.c, 200, {}, call.rate) : notFound(call.c, call.rate)
    },
  },
}
