/**
 * The request being served, carried through async calls with AsyncLocalStorage, so every log line written
 * while serving it (by routes, the LWA client, the token manager, the store) carries its id without any core
 * function taking a new parameter.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Logger } from './deps.ts'

interface RequestContext {
  readonly requestId: string
}

const storage = new AsyncLocalStorage<RequestContext>()

/** Inbound ids we accept as they are: short, and nothing that could forge or break a log line. */
const WELL_FORMED_ID = /^[A-Za-z0-9._-]{1,128}$/

/** The inbound `x-request-id` if well formed, else a new random one. */
export function chooseRequestId(inbound: string | undefined | null): string {
  return inbound && WELL_FORMED_ID.test(inbound) ? inbound : crypto.randomUUID()
}

/** Runs `fn` (and everything it awaits) as part of the request `context`. */
export function runInRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn)
}

const wrapped = new WeakSet<Logger>()

/**
 * A logger that adds `requestId` to every line written during a request. A field already named `requestId`
 * (an upstream id, such as Amazon's `x-amzn-requestid`) is kept as `upstreamRequestId`.
 */
export function requestContextLogger(logger: Logger): Logger {
  if (wrapped.has(logger)) return logger
  const withId = (obj: object): object => {
    const requestId = storage.getStore()?.requestId
    if (requestId === undefined) return obj
    if ('requestId' in obj) {
      const { requestId: upstream, ...rest } = obj as { requestId: unknown }
      return upstream === undefined
        ? { ...rest, requestId }
        : { ...rest, requestId, upstreamRequestId: upstream }
    }
    return { ...obj, requestId }
  }
  const result: Logger = {
    debug: (obj, msg) => logger.debug(withId(obj), msg),
    info: (obj, msg) => logger.info(withId(obj), msg),
    warn: (obj, msg) => logger.warn(withId(obj), msg),
    error: (obj, msg) => logger.error(withId(obj), msg),
  }
  wrapped.add(result)
  return result
}
