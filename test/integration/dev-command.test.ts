/**
 * `sp-connect dev` as a developer runs it: a child process serving the dashboard and the Amazon simulator
 * on one port, a data folder that survives restarts, and other CLI processes working on the same folder.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BrowserClient } from '../helpers/browser-client.ts'
import { type DevServer, runCli, startDev } from '../helpers/cli.ts'
import { answerConsent, randomSellingPartnerId } from '../helpers/flows.ts'

const PARTICIPATIONS = '/sellingpartnerapi-na.amazon.com/sellers/v1/marketplaceParticipations'

/** A port that was free a moment ago (the kernel hands out ephemeral ports round-robin, so reuse is rare). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

describe('sp-connect dev', () => {
  let dataDir: string
  let dev: DevServer | undefined
  let connectionId = ''
  const sellingPartnerId = randomSellingPartnerId()

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'sp-connect-dev-'))
  })
  afterAll(async () => {
    await dev?.stop('SIGKILL')
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  it('starts on a free port with --port 0 and serves /healthz and the dashboard', async () => {
    dev = await startDev(['--port', '0', '--data', dataDir])
    expect(dev.port).toBeGreaterThan(0)
    expect(dev.stdout()).toContain(`Data folder        ${dataDir}`)
    expect(dev.stdout()).toContain(`Amazon simulator   ${dev.url}/__amazon/`)

    const health = await fetch(`${dev.url}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok' })

    const dashboard = await fetch(`${dev.url}/`)
    expect(dashboard.status).toBe(200)
    expect(dashboard.headers.get('content-type')).toMatch(/^text\/html/)
    const page = await dashboard.text()
    expect(page).toContain('Connect a seller account')
    expect(page).toContain('No connections yet.')
    expect(page).toContain('development: simulated Amazon')
  })

  it('connects a seller through the website flow, with the simulator under /__amazon', async () => {
    if (!dev) throw new Error('dev is not running')
    const appName = (JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8')) as { appName: string })
      .appName
    const client = new BrowserClient()
    const home = await client.get(`${dev.url}/`)
    const csrf = home.body.match(/name="csrf" value="([^"]+)"/)?.[1] ?? ''
    const start = await client.post(`${dev.url}/console/connect`, { csrf, region: 'na', type: 'seller' })
    expect(start.status).toBe(303)
    const consentUrl = new URL(start.location ?? '', start.url)
    expect(consentUrl.origin).toBe(dev.url)
    expect(consentUrl.pathname).toBe('/__amazon/sellercentral.amazon.com/apps/authorize/consent')

    const consent = await client.get(consentUrl.href)
    expect(consent.status).toBe(200)
    expect(consent.body).toContain(`Authorize ${appName}`)
    expect(consent.body).toContain('>Confirm</button>')
    expect(consent.body).toContain('>Cancel</button>')

    const callbackUrl = await answerConsent(client, consent, { sellingPartnerId })
    const callback = new URL(callbackUrl)
    expect(`${callback.origin}${callback.pathname}`).toBe(`${dev.url}/callback`)
    expect(callback.searchParams.get('selling_partner_id')).toBe(sellingPartnerId)

    const landing = await client.get(callbackUrl)
    expect(landing.status).toBe(303)
    const landed = landing.location?.match(/^\/connections\/(con_[A-Za-z0-9_-]+)\?connected=1$/)
    expect(landed).toBeTruthy()
    connectionId = landed?.[1] ?? ''

    const page = await client.get(new URL(landing.location ?? '', dev.url).href)
    expect(page.status).toBe(200)
    expect(page.body).toContain('Connected. The account is authorized.')
    expect(page.body).toContain(`<h1>${sellingPartnerId}</h1>`)
    expect(page.body).toContain(`<code>${connectionId}</code>`)
  })

  it('other CLI processes see the connection on the same data folder while dev runs', async () => {
    if (!dev) throw new Error('dev is not running')
    const listed = await runCli(['connections', 'list', '--data', dataDir, '--json'])
    expect(listed.code).toBe(0)
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({
        id: connectionId,
        selling_partner_id: sellingPartnerId,
        region: 'na',
        account_type: 'seller',
        status: 'active',
      }),
    ])

    const token = await runCli(['token', connectionId, '--data', dataDir])
    expect(token.code).toBe(0)
    expect(token.stderr).toBe('')
    expect(token.stdout).toMatch(/^Atza\|[\x21-\x7e]+\n$/)
    const spapi = await fetch(`${dev.url}/__amazon${PARTICIPATIONS}`, {
      headers: { 'x-amz-access-token': token.stdout.trim() },
    })
    expect(spapi.status).toBe(200)
  })

  it('stops on SIGTERM and, restarted on the same folder with --port N, still has the connection and its grant', async () => {
    if (!dev) throw new Error('dev is not running')
    const first = dev
    const before = await runCli(['token', connectionId, '--data', dataDir])
    expect(before.code).toBe(0)

    const stopped = await first.stop()
    expect(stopped).toEqual({ code: 0, signal: null })
    expect(first.stderr()).toContain('SIGTERM received, shutting down')
    expect((await fetch(`${first.url}/healthz`).catch((error: unknown) => error)) instanceof Error).toBe(true)

    const port = await freePort()
    dev = await startDev(['--port', String(port), '--data', dataDir])
    expect(dev.port).toBe(port)
    expect(dev.url).toBe(`http://localhost:${port}`)

    const dashboard = await (await fetch(`${dev.url}/`)).text()
    expect(dashboard).toContain(`data-connection-id="${connectionId}"`)
    expect(dashboard).toContain(sellingPartnerId)
    expect(dashboard).not.toContain('No connections yet.')

    const listed = await runCli(['connections', 'list', '--data', dataDir, '--json'])
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ id: connectionId, selling_partner_id: sellingPartnerId, status: 'active' }),
    ])
    const token = await runCli(['token', connectionId, '--data', dataDir])
    expect(token.code).toBe(0)
    expect(token.stdout).toBe(before.stdout)

    // The restarted simulator remembers the seller's grant (its state file): Manage Your Apps lists the app.
    const appName = (JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8')) as { appName: string })
      .appName
    const manage = await fetch(
      `${dev.url}/__amazon/sellercentral.amazon.com/apps/manage?selling_partner_id=${sellingPartnerId}`,
    )
    expect(manage.status).toBe(200)
    const managed = await manage.text()
    expect(managed).toContain(appName)
    expect(managed).toMatch(/<td>Active<\/td>/)

    // Prove the restarted simulator still honours the grant: expire every access token, so the next SP-API
    // call is rejected and sp-connect must refresh with the stored refresh token against the new process.
    const control = `${dev.url}/__amazon/_control`
    const countersBefore = (await (await fetch(`${control}/counters`)).json()) as {
      byGrant: { refresh_token: number }
    }
    const expired = await fetch(`${control}/expire-tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
    expect(expired.status).toBe(200)
    const call = await runCli([
      'call',
      connectionId,
      'GET',
      '/sellers/v1/marketplaceParticipations',
      '--data',
      dataDir,
    ])
    expect(call.stderr).toBe('')
    expect(call.code).toBe(0)
    const body = JSON.parse(call.stdout) as { payload: { marketplace: { id: string } }[] }
    // Each simulated seller participates in its own subset of the region's marketplaces.
    expect(body.payload.length).toBeGreaterThan(0)
    for (const p of body.payload)
      expect(['ATVPDKIKX0DER', 'A2EUQ1WTGCTBG2', 'A1AM78C64UM0Y8', 'A2Q3Y263D00KWC']).toContain(
        p.marketplace.id,
      )
    const countersAfter = (await (await fetch(`${control}/counters`)).json()) as {
      byGrant: { refresh_token: number }
    }
    expect(countersAfter.byGrant.refresh_token - countersBefore.byGrant.refresh_token).toBe(1)

    const refreshed = await runCli(['token', connectionId, '--data', dataDir])
    expect(refreshed.code).toBe(0)
    expect(refreshed.stdout).toMatch(/^Atza\|[\x21-\x7e]+\n$/)
    expect(refreshed.stdout).not.toBe(before.stdout)
    const spapi = await fetch(`${dev.url}/__amazon${PARTICIPATIONS}`, {
      headers: { 'x-amz-access-token': refreshed.stdout.trim() },
    })
    expect(spapi.status).toBe(200)

    // Neither the dev server's logs nor its banner ever show a refresh token.
    expect(first.stdout() + first.stderr() + dev.stdout() + dev.stderr()).not.toMatch(/Atzr\|[\x21-\x7e]/)
  })
})
