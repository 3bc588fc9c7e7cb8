/**
 * `GET /v1/openapi.json`: the HTTP API's contract (../openapi.ts). Mounted before the API-key check: it
 * describes shapes and error codes only, the same the npm package ships, never data or secrets
 * (docs/decisions/0011-openapi.md).
 */
import { Hono } from 'hono'
import type { ServerEnv } from '../context.ts'
import { openApiDocument } from '../openapi.ts'

export const openApiRoute = new Hono<ServerEnv>()

openApiRoute.get('/openapi.json', (c) => {
  const { publicUrl, basePath } = c.var.runtime.config
  return c.json(openApiDocument(`${publicUrl}${basePath ?? ''}`))
})
