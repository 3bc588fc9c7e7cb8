/**
 * `sp-connect dev` exercising what an integrating team builds: signed webhooks to a local receiver
 * (`--webhook-url`), post-connect redirects to the app's origin (`--return-origin`), a Draft app's test flow
 * (`--draft`), the listen address (`--host`), and `--json` on the commands that print data.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyWebhook } from '../../src/core/events/signature.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { type DevServer, runCli, spawnCli, startDev } from '../helpers/cli.ts'
import { answerConsent, randomSellingPartnerId } from '../helpers/flows.ts'

const RETURN_ORIGIN = 'http://app.example.test:8080'

interface Received {
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** A webhook receiver on loopback that keeps every request. */
async function startReceiver(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { url: `http://127.0.0.1:${port}/hooks`, received, server }
}

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined) return value
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function devFile(dir: string): { apiKey: string; webhookSecret?: string } {
  return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {
    apiKey: string
    webhookSecret?: string
  }
}

describe('sp-connect dev flags', () => {
  let dataDir: string
  let dev: DevServer | undefined
  let receiver: Awaited<ReturnType<typeof startReceiver>>
  let connectionId = ''

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'sp-connect-dev-flags-'))
    receiver = await startReceiver()
    dev = await startDev([
      '--port',
      '0',
      '--data',
      dataDir,
      '--webhook-url',
      receiver.url,
      '--return-origin',
      RETURN_ORIGIN,
      '--draft',
    ])
  })
  afterAll(async () => {
    await dev?.stop('SIGKILL')
    await new Promise((resolve) => receiver?.server.close(resolve))
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  it('keeps a generated webhook secret in config.json and says where it is', () => {
    const secret = devFile(dataDir).webhookSecret
    expect(secret).toMatch(/^whsec_dev_[A-Za-z0-9_-]{43}$/)
    expect(dev?.stdout()).toContain(`Webhooks           ${receiver.url}`)
    expect(dev?.stdout()).toContain(`webhookSecret from ${join(dataDir, 'config.json')}`)
    expect(dev?.stdout()).not.toContain(secret)
    expect(dev?.stdout()).toContain('App status         Draft')
  })

  it('--draft: the consent URL carries version=beta and the Draft app can be authorized', async () => {
    if (!dev) throw new Error('dev is not running')
    const client = new BrowserClient()
    const home = await client.get(`${dev.url}/`)
    const csrf = home.body.match(/name="csrf" value="([^"]+)"/)?.[1] ?? ''
    const start = await client.post(`${dev.url}/console/connect`, { csrf, region: 'na', type: 'seller' })
    expect(start.status).toBe(303)
    const consentUrl = new URL(start.location ?? '', start.url)
    expect(consentUrl.searchParams.get('version')).toBe('beta')
    const consent = await client.get(consentUrl.href)
    expect(consent.status).toBe(200)
    const landing = await client.get(
      await answerConsent(client, consent, { sellingPartnerId: randomSellingPartnerId() }),
    )
    expect(landing.status).toBe(303)
    connectionId = landing.location?.match(/\/connections\/(con_[A-Za-z0-9_-]+)/)?.[1] ?? ''
    expect(connectionId).toMatch(/^con_/)
  })

  it('--webhook-url: the receiver gets a delivery signed with the secret from config.json', async () => {
    const secret = devFile(dataDir).webhookSecret ?? ''
    const delivery = await waitFor(
      () => receiver.received.find((r) => r.body.includes(connectionId) && r.body.includes('connection.')),
      'a webhook delivery about the connection',
    )
    const header = String(delivery.headers['sp-connect-signature'] ?? '')
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}/)
    expect(verifyWebhook(secret, header, delivery.body, Math.floor(Date.now() / 1000), 300)).toBe(true)
    expect(verifyWebhook(`${secret}x`, header, delivery.body, Math.floor(Date.now() / 1000), 300)).toBe(false)

    // The way the banner tells a developer to check a capture.
    const verified = await runCli(
      ['webhooks', 'verify', '--secret-env', 'HOOK_SECRET', '--signature', header, '--json'],
      { env: { HOOK_SECRET: secret }, input: delivery.body },
    )
    expect(verified.code).toBe(0)
    expect(JSON.parse(verified.stdout)).toEqual({ valid: true, reason: null })

    const deliveries = await runCli(['webhooks', 'deliveries', '--data', dataDir, '--json'])
    expect(deliveries.code).toBe(0)
    expect(JSON.parse(deliveries.stdout)).toEqual(
      expect.arrayContaining([expect.objectContaining({ url: receiver.url, status: 'delivered' })]),
    )
  })

  it('--return-origin: a connect session may return to that origin, and only there', async () => {
    if (!dev) throw new Error('dev is not running')
    const { apiKey } = devFile(dataDir)
    const create = (returnTo: string) =>
      fetch(`${dev?.url}/v1/connect-sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tenant_id: 'tenant-1', region: 'na', return_to: returnTo }),
      })
    const refused = await create('http://other.example.test:8080/done')
    expect(refused.status).toBe(400)

    const created = await create(`${RETURN_ORIGIN}/done`)
    expect(created.status).toBe(201)
    const { url } = (await created.json()) as { url: string }
    const client = new BrowserClient()
    const start = await client.get(url)
    expect(start.status).toBe(303)
    const consent = await client.get(new URL(start.location ?? '', start.url).href)
    const landing = await client.get(
      await answerConsent(client, consent, { sellingPartnerId: randomSellingPartnerId() }),
    )
    expect(landing.status).toBe(303)
    const back = new URL(landing.location ?? '')
    expect(`${back.origin}${back.pathname}`).toBe(`${RETURN_ORIGIN}/done`)
    expect(back.searchParams.get('connection_id')).toMatch(/^con_/)
  })

  it('--json: every data-printing command prints one JSON document', async () => {
    const token = await runCli(['token', connectionId, '--data', dataDir, '--json'])
    expect(token.code).toBe(0)
    const parsed = JSON.parse(token.stdout) as {
      access_token: string
      token_type: string
      expires_at: string
    }
    expect(parsed.access_token).toMatch(/^Atza\|/)
    expect(parsed.token_type).toBe('bearer')
    expect(Date.parse(parsed.expires_at)).toBeGreaterThan(Date.now())

    const grantless = await runCli([
      'token',
      '--grantless',
      'sellingpartnerapi::notifications',
      '--data',
      dataDir,
      '--json',
    ])
    expect(grantless.code).toBe(0)
    expect(JSON.parse(grantless.stdout)).toMatchObject({ token_type: 'bearer' })

    for (const args of [
      ['connections', 'list'],
      ['connections', 'show', connectionId],
      ['events', 'list'],
      ['keys', 'status'],
      ['secrets', 'status'],
      ['api-keys', 'list'],
      ['operators', 'list'],
      ['migrate'],
    ]) {
      const result = await runCli([...args, '--data', dataDir, '--json'])
      expect(result.code, args.join(' ')).toBe(0)
      expect(() => JSON.parse(result.stdout), args.join(' ')).not.toThrow()
    }
    const generated = await runCli(['keys', 'generate', '--json'])
    expect(JSON.parse(generated.stdout)).toMatchObject({ id: expect.stringMatching(/^k-/) })
    const migrated = JSON.parse((await runCli(['migrate', '--data', dataDir, '--json'])).stdout) as {
      status: string
    }[]
    expect(migrated.every((m) => m.status === 'already_applied')).toBe(true)

    const revoked = await runCli(['connections', 'revoke', connectionId, '--data', dataDir, '--json'])
    expect(revoked.code).toBe(0)
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id: connectionId, status: 'disconnected' })
  })
})

describe('sp-connect dev --host', () => {
  let dataDir: string
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'sp-connect-dev-host-'))
  })
  afterAll(() => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  it('refuses a non-loopback address without --allow-remote (the dev console has no sign-in)', async () => {
    const result = await runCli(['dev', '--host', '0.0.0.0', '--port', '0', '--data', dataDir])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('--allow-remote')
    expect(result.stdout).not.toContain('sp-connect dev is running')
  })

  it('listens on it with --allow-remote, warning loudly on stderr', async () => {
    const dev = await startDev(['--host', '0.0.0.0', '--allow-remote', '--port', '0', '--data', dataDir])
    try {
      // Printed before the banner, but on another pipe: wait for it rather than assume an order.
      await waitFor(() => (dev.stderr().includes('NO sign-in') ? true : undefined), 'the warning')
      expect(dev.stderr()).toContain('WARNING: listening on 0.0.0.0')
      expect(dev.stderr()).toContain('NO sign-in')
      expect((await fetch(`${dev.url}/healthz`)).status).toBe(200)
    } finally {
      await dev.stop()
    }
  })
})

describe('sp-connect simulator --json', () => {
  it('prints its endpoints and the generated app as one JSON document once listening', async () => {
    const child = spawnCli(['simulator', '--port', '0', '--json'])
    try {
      let stdout = ''
      child.stdout.on('data', (chunk: string) => {
        stdout += chunk
      })
      const printed = await waitFor(() => {
        try {
          return JSON.parse(stdout) as {
            url: string
            lwa_token_url: string
            apps: { application_id: string; client_id: string; status: string }[]
          }
        } catch {
          return undefined
        }
      }, 'the JSON document')
      expect(printed.lwa_token_url).toBe(`${printed.url}/auth/o2/token`)
      expect(printed.apps).toEqual([
        expect.objectContaining({
          application_id: expect.stringMatching(/^amzn1\.sp\.solution\./),
          client_id: expect.stringMatching(/^amzn1\.application-oa2-client\./),
          status: 'published',
        }),
      ])
    } finally {
      child.kill('SIGTERM')
    }
  })
})
