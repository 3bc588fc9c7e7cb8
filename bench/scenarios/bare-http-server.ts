/**
 * The ceiling for token-api.ts: a bare `node:http` server on 127.0.0.1 (in a process of its own, like each
 * sp-connect instance) answering every request with one fixed JSON body, given by the parent, of the same
 * size as sp-connect's access-token answer. No routing, no authentication, no store: what Node's HTTP stack
 * alone does on this machine. Exits when its parent goes away.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export type BareServerRequest = { readonly op: 'start'; readonly body: string } | { readonly op: 'close' }
export type BareServerReply =
  | { readonly type: 'ready'; readonly url: string }
  | { readonly type: 'error'; readonly message: string }

const server = createServer()
let body = Buffer.alloc(0)
server.on('request', (req, res) => {
  // Read (and drop) any request body before answering, as a real handler would.
  req.resume()
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
    res.end(body)
  })
})

process.on('disconnect', () => process.exit(0))
process.on('message', (message: BareServerRequest) => {
  if (message.op === 'start') {
    body = Buffer.from(message.body)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      process.send?.({ type: 'ready', url: `http://127.0.0.1:${port}` } satisfies BareServerReply)
    })
  } else {
    server.closeAllConnections()
    server.close(() => process.disconnect())
  }
})
