/**
 * The HTTP API's contract (docs/decisions/0011-openapi.md): the OpenAPI document the service serves at
 * `/v1/openapi.json` without an API key, linted by Redocly's `recommended-strict` rules; the routes the app
 * really mounts under `/v1` and the document's operations, compared both ways so neither can drift; and every
 * error code of ERROR_CODES in the document, each response listing codes of its own status only.
 */
import { createConfig, lintFromString } from '@redocly/openapi-core'
import { inspectRoutes } from 'hono/dev'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ERROR_CODES, type ErrorCode } from '../../src/domain/errors.ts'
import { createServerApp } from '../../src/server/app.ts'
import { API_OPERATIONS, openApiDocument, openApiPath } from '../../src/server/openapi.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

/** What a Hono `all()` route answers, as the document lists it. */
const ANY_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']

interface Operation {
  operationId: string
  responses: Record<string, { content?: Record<string, { 'x-error-codes'?: string[] }> }>
}
type Doc = {
  openapi: string
  servers: { url: string }[]
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, { enum?: string[] }> }
}

describe('the OpenAPI document of /v1', () => {
  let stack: Stack
  let served: Doc

  beforeAll(async () => {
    stack = await startStack()
    const response = await fetch(`${stack.serviceUrl}/v1/openapi.json`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    served = (await response.json()) as Doc
  })

  afterAll(async () => {
    await stack?.close()
  })

  it('is served without an API key, for this service’s URL', async () => {
    expect(served.openapi).toMatch(/^3\.1\./)
    expect(served.servers).toEqual([{ url: stack.serviceUrl }])
    expect(served).toEqual(openApiDocument(stack.serviceUrl))
    // A wrong key changes nothing: the document is public, and no key is checked (or counted as a failure).
    const withBadKey = await fetch(`${stack.serviceUrl}/v1/openapi.json`, {
      headers: { authorization: 'Bearer not-a-key' },
    })
    expect(withBadKey.status).toBe(200)
    // Everything else under /v1 still needs the key.
    const other = await fetch(`${stack.serviceUrl}/v1/connections`)
    expect(other.status).toBe(401)
  })

  it('passes Redocly’s recommended-strict lint', async () => {
    const config = await createConfig({ extends: ['recommended-strict'] })
    const problems = await lintFromString({
      source: JSON.stringify(served),
      absoluteRef: 'openapi.json',
      config,
    })
    expect(
      problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`),
    ).toEqual([])
  })

  it('lists exactly the routes the app mounts under /v1', () => {
    const app = createServerApp(stack.runtime)
    const mounted = new Set<string>()
    for (const route of inspectRoutes(app)) {
      if (route.isMiddleware || !(route.path === '/v1' || route.path.startsWith('/v1/'))) continue
      const methods = route.method === 'ALL' ? ANY_METHODS : [route.method]
      for (const method of methods) mounted.add(`${method} ${openApiPath(route.path)}`)
    }
    const documented = Object.entries(served.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    )
    expect(documented.length).toBe(new Set(documented).size)
    expect([...mounted].sort()).toEqual([...documented].sort())
    // Every operation of the route list made it into the document under its id.
    const ids = Object.values(served.paths).flatMap((item) => Object.values(item).map((op) => op.operationId))
    expect(ids.sort()).toEqual(API_OPERATIONS.map((op) => op.operationId).sort())
  })

  it('has every error code, each under a response of its own status', () => {
    expect(served.components.schemas['ErrorCode']?.enum).toEqual(Object.keys(ERROR_CODES))
    const listed = new Set<string>()
    for (const item of Object.values(served.paths)) {
      for (const op of Object.values(item)) {
        for (const [status, response] of Object.entries(op.responses)) {
          for (const code of response.content?.['application/json']?.['x-error-codes'] ?? []) {
            expect(code in ERROR_CODES, `${op.operationId}: ${code}`).toBe(true)
            expect(String(ERROR_CODES[code as ErrorCode].status), `${op.operationId}: ${code}`).toBe(status)
            listed.add(code)
          }
        }
      }
    }
    // The codes every authenticated call may give are listed on each operation.
    for (const code of ['unauthenticated', 'forbidden', 'invalid_request', 'rate_limited', 'internal']) {
      expect(listed.has(code)).toBe(true)
    }
  })
})
