/**
 * The two SP-API transports (src/core/spapi/transport.ts) against a real HTTP server on loopback: the same
 * answers through fetch and through node:http, bodies both ways, decoded content codings, connection reuse,
 * refused connections and aborts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readCapped } from '../../src/core/spapi/body.ts'
import { failedBeforeConnecting } from '../../src/core/spapi/retry.ts'
import {
  fetchTransport,
  nodeHttpTransport,
  type SpApiTransport,
  type UpstreamRequest,
} from '../../src/core/spapi/transport.ts'

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

let server: Server
let base: string
let connections = 0
const handlers = new Map<string, Handler>()

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const handler = handlers.get(new URL(req.url ?? '/', 'http://x').pathname)
    if (handler) handler(req, res, Buffer.concat(chunks))
    else res.writeHead(404).end()
  })
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  handlers.set('/echo', (req, res, body) => {
    res.writeHead(201, {
      'content-type': 'application/json',
      'x-amzn-RequestId': 'rid-1',
      'set-cookie': ['a=1', 'b=2'],
    })
    res.end(
      JSON.stringify({
        method: req.method,
        token: req.headers['x-amz-access-token'],
        length: req.headers['content-length'] ?? null,
        bytes: body.length,
      }),
    )
  })
  handlers.set('/gzip', (_req, res) => {
    const packed = gzipSync(Buffer.from('{"payload":"unpacked"}'))
    res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': packed.length })
    res.end(packed)
  })
})

const node = nodeHttpTransport()

afterAll(async () => {
  node.close()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

function request(path: string, init: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    url: new URL(`${base}${path}`),
    method: 'GET',
    headers: { 'x-amz-access-token': 'Atza|t', accept: 'application/json' },
    body: null,
    signal: new AbortController().signal,
    ...init,
  }
}

async function text(body: ReadableStream<Uint8Array> | null): Promise<string> {
  return new TextDecoder().decode(await readCapped(body, 1 << 20))
}

const transports: [string, SpApiTransport][] = [
  ['fetch', fetchTransport(globalThis.fetch)],
  ['node:http', node],
]

describe.each(transports)('%s transport', (_name, send) => {
  it('sends the headers given and hands back status, headers and body', async () => {
    const answer = await send(request('/echo'))
    expect(answer.status).toBe(201)
    expect(answer.headers.get('x-amzn-requestid')).toBe('rid-1')
    expect(answer.headers.get('X-Amzn-RequestId')).toBe('rid-1')
    expect(answer.headers.get('retry-after')).toBeNull()
    expect(JSON.parse(await text(answer.body))).toEqual({
      method: 'GET',
      token: 'Atza|t',
      length: null,
      bytes: 0,
    })
  })

  it('sends a string, bytes or a stream as the body', async () => {
    const string = await send(request('/echo', { method: 'POST', body: '{"a":1}' }))
    expect(JSON.parse(await text(string.body))).toMatchObject({ bytes: 7, length: '7' })
    const bytes = await send(request('/echo', { method: 'PUT', body: new Uint8Array(1000) }))
    expect(JSON.parse(await text(bytes.body))).toMatchObject({ bytes: 1000, length: '1000' })
    let left = 10
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (left-- > 0) controller.enqueue(new Uint8Array(64 * 1024))
        else controller.close()
      },
    })
    const streamed = await send(request('/echo', { method: 'PUT', body: stream }))
    expect(JSON.parse(await text(streamed.body))).toMatchObject({ bytes: 640 * 1024 })
  })

  it('decodes a gzip answer', async () => {
    const answer = await send(request('/gzip'))
    expect(await text(answer.body)).toBe('{"payload":"unpacked"}')
  })

  it('rejects a refused connection with an error that says nothing was sent', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const failure = await send({ ...request('/echo'), url: new URL(`http://127.0.0.1:${port}/echo`) }).catch(
      (error: unknown) => error,
    )
    expect(failure).toBeInstanceOf(Error)
    expect(failedBeforeConnecting(failure)).toBe(true)
  })

  it('rejects when aborted before the answer', async () => {
    handlers.set('/silent', () => {})
    const controller = new AbortController()
    const pending = send(request('/silent', { signal: controller.signal }))
    controller.abort()
    await expect(pending).rejects.toThrow()
  })
})

describe('node:http transport', () => {
  it('reuses one connection for calls one after the other', async () => {
    for (let i = 0; i < 3; i++) await text((await node(request('/echo'))).body)
    const before = connections
    for (let i = 0; i < 5; i++) await text((await node(request('/echo'))).body)
    expect(connections).toBe(before)
  })

  it('refuses a URL that is neither http nor https', async () => {
    await expect(node({ ...request('/echo'), url: new URL('ftp://127.0.0.1/echo') })).rejects.toThrow(
      TypeError,
    )
  })
})
