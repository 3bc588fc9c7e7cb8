/**
 * Sandbox hosts answer like Amazon's static sandbox: the response of the model's `x-amzn-api-sandbox` case whose
 * request parameters the call matches (the most specific one when several do), and 400 "Could not match input
 * arguments" otherwise. Authentication and usage plans apply as on production hosts.
 */
import { isDeepStrictEqual } from 'node:util'
import type { SpapiCall } from './call.ts'
import { queryList } from './call.ts'
import { type SpapiStatus, spapiErrors, spapiResponse } from './respond.ts'
import { SANDBOX_CASES, type SandboxCase } from './sandbox-responses.ts'

async function matches(call: SpapiCall, entry: SandboxCase, body: () => Promise<unknown>): Promise<boolean> {
  for (const parameter of entry.parameters) {
    const { name, value } = parameter
    if (parameter.in === 'path') {
      if (call.params[name] !== value) return false
    } else if (parameter.in === 'body') {
      if (!isDeepStrictEqual(await body(), value)) return false
    } else if (parameter.in === 'header') {
      if (call.c.req.header(name) !== value) return false
    } else if (Array.isArray(value)) {
      if (!isDeepStrictEqual(queryList(call.c, name), value.map(String))) return false
    } else if (call.c.req.query(name) !== String(value)) {
      return false
    }
  }
  return true
}

export async function sandboxResponse(call: SpapiCall): Promise<Response> {
  const cases = SANDBOX_CASES[`${call.operation.method} ${call.operation.path}`] ?? []
  let parsed: { value: unknown } | undefined
  const body = async () => {
    if (!parsed) {
      const text = await call.c.req.text()
      try {
        parsed = { value: text === '' ? undefined : JSON.parse(text) }
      } catch {
        parsed = { value: undefined }
      }
    }
    return parsed.value
  }
  const ordered = [...cases].sort((a, b) => b.parameters.length - a.parameters.length)
  for (const entry of ordered) {
    if (await matches(call, entry, body)) {
      return spapiResponse(call.c, entry.status as SpapiStatus, entry.response ?? null, call.rate)
    }
  }
  return spapiErrors(
    call.c,
    400,
    [{ code: 'InvalidInput', message: 'Could not match input arguments' }],
    call.rate,
  )
}
