/**
 * Every /v1 JSON body is bounded before it is buffered (src/server/routes/api.ts): one key must not be able
 * to make the service hold gigabytes, whether the client declares the length or streams it chunked.
 */
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Stack, startStack } from '../helpers/stack.ts'

let stack: Stack

beforeAll(async () => {
  stack = await startStack()
})

afterAll(async () => {
  await stack?.close()
})

/**
 * Posts `bytes` of filler over a raw socket, chunked (no content-length) or with a declared length, and
 * returns what the server answered. A raw socket, because HTTP clients report the server closing the
 * connection while they still write (which it does after refusing) as their own failure, answer or not.
 */
function post(path: string, bytes: number, chunked: boolean): Promise<{ status: number; body: string }> {
  const url = new URL(path, stack.serviceUrl)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (data) => {
      received += data
    })
    socket.on('error', () => {}) // EPIPE/ECONNRESET once the server has answered and closed
    socket.on('close', () => {
      const match = /^HTTP\/1\.1 (\d{3})[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(received)
      if (!match) return reject(new Error(`no HTTP answer: ${received.slice(0, 200)}`))
      resolve({ status: Number(match[1]), body: match[2] ?? '' })
    })
    socket.write(
      `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${stack.apiKey}\r\n` +
        `Content-Type: application/json\r\nConnection: close\r\n` +
        (chunked ? 'Transfer-Encoding: chunked\r\n\r\n' : `Content-Length: ${bytes}\r\n\r\n`),
    )
    const chunk = ' '.repeat(64 * 1024)
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      socket.write(chunked ? `${chunk.length.toString(16)}\r\n${chunk}\r\n` : chunk)
    }
    socket.end(chunked ? '0\r\n\r\n' : '')
  })
}

describe('/v1 request bodies', () => {
  it.each([
    ['a declared length', false],
    ['a chunked stream', true],
  ])('answers 413 payload_too_large past 256 KiB with %s, and creates nothing', async (_name, chunked) => {
    const before = await stack.api('GET', '/v1/api-keys')
    const answer = await post('/v1/api-keys', 320 * 1024, chunked)
    expect(answer.status).toBe(413)
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'payload_too_large' } })
    const after = await stack.api('GET', '/v1/api-keys')
    expect(after.json).toEqual(before.json)
  })

  it('still takes an ordinary body', async () => {
    const created = await stack.api('POST', '/v1/api-keys', { name: 'small', scopes: ['read'] })
    expect(created.status).toBe(201)
  })
})
