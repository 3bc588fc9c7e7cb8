/**
 * `sp-connect simulator --tls`: HTTPS with a generated, name-constrained local CA, and the proxy for Amazon's
 * hosts, including everything an attacker might ask of a proxy. Real sockets on loopback throughout.
 */
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer as createHttpServer, request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SPAPI_HOSTS } from '../../src/domain/regions.ts'
import {
  createSimulator,
  generateDevApp,
  MARKETPLACE_PARTICIPATIONS_PATH,
  type Simulator,
  type SimulatorServer,
} from '../../src/simulator/index.ts'
import { type ProxyEvent, startSimulatorTlsServer } from '../../src/simulator/proxy.ts'
import { CA_KEY_FILE, prepareSimulatorTls, type SimulatorTls } from '../../src/simulator/tls.ts'
import { httpsCall, startTlsSimulatorCli } from '../helpers/peer-clients/simulator-cli.ts'

const NA = SPAPI_HOSTS.na.production
const app = generateDevApp({
  redirectUri: 'https://app.example.com/cb',
  loginUri: 'https://app.example.com/l',
})
const MAX_TUNNELS = 3

let dir: string
let tls: SimulatorTls
let sim: Simulator
let server: SimulatorServer
let port: number
const events: ProxyEvent[] = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sim-tls-'))
  tls = await prepareSimulatorTls(join(dir, 'data'))
  sim = createSimulator({ apps: [app] })
  server = await startSimulatorTlsServer(sim.app.fetch, {
    port: 0,
    tls,
    maxTunnels: MAX_TUNNELS,
    log: (e) => events.push(e),
  })
  port = Number(new URL(server.url).port)
})
afterAll(async () => {
  await server.close()
  await sim.close()
  rmSync(dir, { recursive: true, force: true })
})

interface Answer {
  status: number
  body: string
}

function readAnswer(res: import('node:http').IncomingMessage): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let body = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      body += chunk
    })
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    res.on('error', reject)
  })
}

/** Sends raw bytes to the simulator port and returns everything it answers until it closes or goes quiet. */
async function raw(bytes: string): Promise<string> {
  const socket = netConnect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(bytes)
  let out = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    out += chunk
  })
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve())
    // A 200 to CONNECT keeps the socket open: the status line is all we need then.
    socket.on('data', () => {
      if (out.includes('\r\n\r\n') && out.startsWith('HTTP/1.1 200')) resolve()
    })
  })
  socket.destroy()
  return out
}

/** Opens a CONNECT tunnel and a TLS session through it, verifying the simulator's certificate by our CA. */
async function tunnel(host: string): Promise<TLSSocket> {
  const socket = netConnect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`)
  const [head] = (await once(socket, 'data')) as [Buffer]
  const status = head.toString('latin1').split('\r\n')[0]
  if (status !== 'HTTP/1.1 200 Connection Established') throw new Error(`CONNECT answered ${status}`)
  const secure = tlsConnect({ socket, servername: host, ca: tls.caCertPem })
  await once(secure, 'secureConnect')
  return secure
}

function httpsThrough(
  secure: TLSSocket,
  host: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host,
        port: 443,
        path,
        method: init.method ?? 'GET',
        headers: init.headers ?? {},
        // Without an agent, the request runs on this socket (no DNS lookup, no pool).
        createConnection: () => secure,
      },
      (res) => readAnswer(res).then(resolve, reject),
    )
    req.on('error', reject)
    req.end(init.body)
  })
}

async function accessTokenThroughProxy(sellingPartnerId: string): Promise<string> {
  const refreshToken = sim.selfAuthorize(app.appId, sellingPartnerId, 'na')
  const lwa = await tunnel('api.amazon.com')
  const res = await httpsThrough(lwa, 'api.amazon.com', '/auth/o2/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: app.clientId,
      client_secret: app.clientSecrets[0]?.secret ?? '',
    }).toString(),
  })
  lwa.destroy()
  expect(res.status).toBe(200)
  return (JSON.parse(res.body) as { access_token: string }).access_token
}

describe('the local CA', () => {
  it('is reused across restarts of the same data folder, with its key private to the owner', async () => {
    const again = await prepareSimulatorTls(join(dir, 'data'))
    expect(tls.createdCa).toBe(true)
    expect(again.createdCa).toBe(false)
    expect(again.caCertPem).toBe(tls.caCertPem)
    expect(readFileSync(again.caCertPath, 'utf8')).toBe(tls.caCertPem)
    // A fresh leaf key per start; the CA key is never handed out.
    expect(again.keyPem).not.toBe(tls.keyPem)
    expect(statSync(join(dir, 'data', CA_KEY_FILE)).mode & 0o777).toBe(0o600)
    expect(again.certChainPem).not.toContain(readFileSync(join(dir, 'data', CA_KEY_FILE), 'utf8'))
  })

  it('is replaced when its files are unreadable', async () => {
    const other = join(dir, 'broken')
    const first = await prepareSimulatorTls(other)
    rmSync(join(other, CA_KEY_FILE))
    const second = await prepareSimulatorTls(other)
    expect(second.createdCa).toBe(true)
    expect(second.caCertPem).not.toBe(first.caCertPem)
  })
})

describe('HTTPS', () => {
  it('serves the simulator to a client that trusts only the generated CA, for 127.0.0.1 and Amazon names', async () => {
    const viaIp = await new Promise<Answer>((resolve, reject) => {
      httpsRequest(`https://127.0.0.1:${port}/_control/apps`, { ca: tls.caCertPem }, (res) =>
        readAnswer(res).then(resolve, reject),
      )
        .on('error', reject)
        .end()
    })
    expect(viaIp.status).toBe(200)
    expect(JSON.parse(viaIp.body)).toEqual({
      apps: [{ appId: app.appId, name: app.name, status: 'published' }],
    })

    // What a client whose /etc/hosts points sellingpartnerapi-na.amazon.com at the simulator does.
    const viaName = await new Promise<Answer>((resolve, reject) => {
      httpsRequest(
        {
          host: '127.0.0.1',
          port,
          servername: NA,
          path: MARKETPLACE_PARTICIPATIONS_PATH,
          headers: { Host: NA },
          ca: tls.caCertPem,
        },
        (res) => readAnswer(res).then(resolve, reject),
      )
        .on('error', reject)
        .end()
    })
    expect(viaName.status).toBe(403)
    expect(JSON.parse(viaName.body)).toMatchObject({ errors: [{ code: 'Unauthorized' }] })
  })

  it('is refused by a client that does not trust the CA', async () => {
    const error = await new Promise<Error>((resolve) => {
      httpsRequest(`https://127.0.0.1:${port}/_control/apps`, () => resolve(new Error('answered')))
        .on('error', resolve)
        .end()
    })
    expect((error as Error & { code?: string }).code).toMatch(/CERT|SIGNED|ISSUER/)
  })
})

describe('the proxy', () => {
  it('tunnels to LWA and SP-API hosts and serves them with the original Host', async () => {
    const token = await accessTokenThroughProxy('ATLSPROXY01')
    const spapi = await tunnel(NA)
    const res = await httpsThrough(spapi, NA, MARKETPLACE_PARTICIPATIONS_PATH, {
      headers: { 'x-amz-access-token': token },
    })
    spapi.destroy()
    expect(res.status).toBe(200)
    expect((JSON.parse(res.body) as { payload: unknown[] }).payload.length).toBeGreaterThan(0)
  })

  it('serves absolute-form requests for Amazon hosts and refuses others', async () => {
    const ask = (target: string) =>
      new Promise<Answer>((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port, path: target }, (res) => readAnswer(res).then(resolve, reject))
          .on('error', reject)
          .end()
      })
    const amazon = await ask(`https://${NA}${MARKETPLACE_PARTICIPATIONS_PATH}`)
    expect(amazon.status).toBe(403)
    expect(JSON.parse(amazon.body)).toMatchObject({ errors: [{ code: 'Unauthorized' }] })
    expect((await ask('http://example.com/')).status).toBe(403)
    expect((await ask(`https://${NA}:8443/`)).status).toBe(403)
    expect((await ask(`https://user:pw@${NA}/`)).status).toBe(403)
    expect((await ask('http://127.0.0.1:5432/')).status).toBe(403)
  })

  it('answers a request for another host inside a tunnel with 421', async () => {
    const secure = await tunnel(NA)
    const res = await httpsThrough(secure, 'api.amazon.com', '/auth/o2/token')
    secure.destroy()
    expect(res.status).toBe(421)
  })

  it("answers an absolute-form target inside a tunnel with 421, even with the tunnel's Host", async () => {
    for (const target of ['http://evil.example/inside', 'https://api.amazon.com/auth/o2/token']) {
      const secure = await tunnel(NA)
      const res = await httpsThrough(secure, NA, target)
      secure.destroy()
      expect(res.status, target).toBe(421)
    }
  })
})

describe('the proxy refuses to be an open proxy', () => {
  it.each([
    ['a non-Amazon host', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 403],
    ['a look-alike host', 'CONNECT sellingpartnerapi-na.amazon.com.evil.test:443 HTTP/1.1\r\n\r\n', 403],
    ['a local database', 'CONNECT 127.0.0.1:5432 HTTP/1.1\r\nHost: 127.0.0.1:5432\r\n\r\n', 403],
    ['an IP literal on 443', 'CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n', 403],
    ['an IPv6 literal', 'CONNECT [::1]:443 HTTP/1.1\r\n\r\n', 400],
    ['an Amazon host on port 80', `CONNECT ${NA}:80 HTTP/1.1\r\n\r\n`, 403],
    ['an Amazon host on port 8443', `CONNECT ${NA}:8443 HTTP/1.1\r\n\r\n`, 403],
    ['an Amazon host on port 0443', `CONNECT ${NA}:0443 HTTP/1.1\r\n\r\n`, 403],
    ['a target without a port', `CONNECT ${NA} HTTP/1.1\r\n\r\n`, 400],
    ['a target with credentials', `CONNECT user@${NA}:443 HTTP/1.1\r\n\r\n`, 400],
    ['a URL as target', `CONNECT https://${NA}:443/ HTTP/1.1\r\n\r\n`, 400],
  ])('refuses %s', async (_name, bytes, status) => {
    const answer = await raw(bytes)
    expect(answer.startsWith(`HTTP/1.1 ${status} `)).toBe(true)
  })

  it('answers malformed request lines with 400', async () => {
    for (const bytes of [
      'CONNECT\r\n\r\n',
      'CONNECT  HTTP/1.1\r\n\r\n',
      'CONNECT a b c d\r\n\r\n',
      '\x01\x02garbage\r\n\r\n',
    ]) {
      expect((await raw(bytes)).startsWith('HTTP/1.1 400 ')).toBe(true)
    }
  })

  it('never opens a connection to the refused target, and logs the refusal', async () => {
    const bystander = createNetServer()
    let reached = 0
    bystander.on('connection', (s: Socket) => {
      reached += 1
      s.destroy()
    })
    bystander.listen(0, '127.0.0.1')
    await once(bystander, 'listening')
    const target = `127.0.0.1:${(bystander.address() as { port: number }).port}`
    const answer = await raw(`CONNECT ${target} HTTP/1.1\r\n\r\n`)
    bystander.close()
    expect(answer.startsWith('HTTP/1.1 403 ')).toBe(true)
    expect(reached).toBe(0)
    expect(events).toContainEqual({ event: 'proxy_refused', target, reason: 'not a simulated Amazon host' })
  })

  it('bounds a flood of CONNECTs: past the tunnel limit it answers 503, and recovers', async () => {
    const open = await Promise.all(Array.from({ length: MAX_TUNNELS }, () => tunnel(NA)))
    const flood = await Promise.all(
      Array.from({ length: 20 }, () => raw(`CONNECT ${NA}:443 HTTP/1.1\r\n\r\n`)),
    )
    for (const answer of flood) expect(answer.startsWith('HTTP/1.1 503 ')).toBe(true)
    expect(events.some((e) => e.event === 'proxy_tunnel_limit')).toBe(true)
    for (const s of open) s.destroy()
    await Promise.all(open.map((s) => (s.closed ? undefined : once(s, 'close'))))
    // The tunnels' raw sockets close right after; wait until a new tunnel is accepted again.
    let recovered: TLSSocket | undefined
    for (let attempt = 0; attempt < 50 && recovered === undefined; attempt++) {
      recovered = await tunnel(NA).catch(async () => {
        await new Promise((r) => setTimeout(r, 20))
        return undefined
      })
    }
    expect(recovered).toBeDefined()
    recovered?.destroy()
  })
})

describe('sp-connect simulator --tls --notify-url', () => {
  it('rotates the client secret standalone and delivers the notification, reusing the CA of the data folder', async () => {
    const received: { notificationType: string; payload: Record<string, Record<string, string>> }[] = []
    const receiver = createHttpServer((req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => {
        body += chunk
      })
      req.on('end', () => {
        received.push(JSON.parse(body) as (typeof received)[number])
        res.writeHead(204).end()
      })
    })
    receiver.listen(0, '127.0.0.1')
    await once(receiver, 'listening')
    const notifyUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/sqs`
    const data = join(dir, 'cli-data')
    const first = await startTlsSimulatorCli(['--data', data, '--notify-url', notifyUrl])
    await first.stop()
    const cli = await startTlsSimulatorCli(['--data', data, '--notify-url', notifyUrl])
    try {
      expect(cli.caPem).toBe(first.caPem)
      const app = cli.info.apps[0]
      const token = await httpsCall(cli.port, cli.caPem, {
        host: 'api.amazon.com',
        path: '/auth/o2/token',
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          scope: 'sellingpartnerapi::client_credential:rotation',
          client_id: app?.client_id ?? '',
          client_secret: app?.client_secret ?? '',
        }).toString(),
      })
      expect(token.status).toBe(200)
      const rotated = await httpsCall(cli.port, cli.caPem, {
        host: NA,
        path: '/applications/2023-11-30/clientSecret',
        method: 'POST',
        headers: { 'x-amz-access-token': (JSON.parse(token.body) as { access_token: string }).access_token },
      })
      expect(rotated.status).toBe(204)
      for (let i = 0; i < 200 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 25))
      expect(received).toHaveLength(1)
      expect(received[0]?.notificationType).toBe('APPLICATION_OAUTH_CLIENT_NEW_SECRET')
      expect(received[0]?.payload['applicationOAuthClientNewSecret']?.['clientId']).toBe(app?.client_id)
      // The new secret travels only in the notification, never in the simulator's output.
      const secret = received[0]?.payload['applicationOAuthClientNewSecret']?.['newClientSecret'] ?? ''
      expect(secret).toMatch(/^amzn1\.oa2-cs\.v1\./)
      expect(cli.stderr()).not.toContain(secret)
    } finally {
      await cli.stop()
      receiver.close()
    }
  }, 90_000)
})
