/**
 * The Login-URI handoff (issue 7, rule 1) in a real browser: Debian's headless Chromium (through playwright-core)
 * against `sp-connect dev` running as a child process. The simulated Appstore → Authorize → consent (a seller
 * id) → sp-connect `/login` → dev's stand-in for the app's sign-in page (a tenant id and name) → the
 * confirmation page → Confirm → back through Amazon → the landing; and Cancel on the confirmation page. Every
 * console error, page error and CSP violation is recorded and asserted absent.
 *
 * The confirmation page's screenshot goes to /tmp/confirmation.png (SP_CONNECT_SCREENSHOTS=<dir> keeps the
 * others).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, launchChromium, type Problem, watchedContext } from '../helpers/chromium.ts'
import { type DevServer, runCli, startDev } from '../helpers/cli.ts'
import { randomSellingPartnerId } from '../helpers/flows.ts'

const HOST = 'sellercentral.amazon.com'
const CONFIRMATION_SHOT = '/tmp/confirmation.png'

describe('Login URI in headless Chromium (sp-connect dev)', () => {
  let dataDir: string
  let shots: string
  let dev: DevServer | undefined
  let url: string
  let appId: string
  let appName: string
  let browser: Browser | undefined
  const keepShots = process.env['SP_CONNECT_SCREENSHOTS']

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true)
    dataDir = mkdtempSync(join(tmpdir(), 'sp-connect-login-uri-'))
    shots = keepShots ?? join(dataDir, 'screenshots')
    mkdirSync(shots, { recursive: true })
    dev = await startDev(['--port', '0', '--data', dataDir])
    url = dev.url
    const config = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8')) as {
      appId: string
      appName: string
    }
    appId = config.appId
    appName = config.appName
    browser = await launchChromium()
  })
  afterAll(async () => {
    await browser?.close()
    await dev?.stop('SIGKILL')
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  async function connections(): Promise<
    { id: string; selling_partner_id: string; tenant_id: string | null }[]
  > {
    const listed = await runCli(['connections', 'list', '--data', dataDir, '--json'])
    expect(listed.code).toBe(0)
    return JSON.parse(listed.stdout) as { id: string; selling_partner_id: string; tenant_id: string | null }[]
  }

  /** Simulated Appstore → Authorize → consent as `sellingPartnerId` → `/login` → the dev sign-in stand-in. */
  async function toSignIn(page: Page, sellingPartnerId: string): Promise<void> {
    const detail = await page.goto(`${url}/__amazon/${HOST}/apps/appstore/${appId}`)
    expect(detail?.status()).toBe(200)
    await page.getByRole('link', { name: 'Authorize now' }).click()
    await page.waitForURL((target) => target.pathname.startsWith(`/__amazon/${HOST}/apps/authorize/`))
    await page.getByLabel('Selling partner id').fill(sellingPartnerId)
    await page.getByRole('button', { name: 'Confirm' }).click()
    // Amazon → sp-connect /login → the app's sign-in page (dev's stand-in) with the opaque request id.
    await page.waitForURL((target) => target.pathname === '/dev/sign-in')
    const signIn = new URL(page.url())
    expect(signIn.origin).toBe(url)
    expect(signIn.searchParams.get('sp_connect_login')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(`Sign in to ${appName}`)
    expect(await page.locator('code').first().textContent()).toBe(sellingPartnerId)
    // Nothing is linked yet.
    expect((await connections()).map((c) => c.selling_partner_id)).not.toContain(sellingPartnerId)
  }

  /** Types a tenant on the sign-in stand-in and continues to the confirmation page. */
  async function signInAs(page: Page, tenantId: string, tenantName: string): Promise<void> {
    await page.getByLabel('Tenant (your app').fill(tenantId)
    await page.getByLabel('Tenant name').fill(tenantName)
    await page.getByRole('button', { name: 'Sign in and continue' }).click()
    await page.waitForURL((target) => /^\/login\/continue\/[A-Za-z0-9_-]{43}$/.test(target.pathname))
  }

  it('Appstore → sign-in → confirmation → Confirm → Amazon → landing: connected to that tenant', async () => {
    if (!browser) throw new Error('no browser')
    const problems: Problem[] = []
    const context = await watchedContext(browser, problems)
    try {
      const page = await context.newPage()
      const sellingPartnerId = randomSellingPartnerId()
      await toSignIn(page, sellingPartnerId)
      await signInAs(page, 'tenant-browser', 'Acme Widgets')

      // The confirmation page: seller id, region and tenant name, in the app's name, with Confirm and Cancel.
      const heading = await page.getByRole('heading', { level: 1 }).textContent()
      expect(heading).toMatch(/^Connect Amazon seller account .+ \(North America\) to Acme Widgets\?$/)
      const body = (await page.locator('article').textContent()) ?? ''
      expect(body).toContain(sellingPartnerId)
      expect(body).toContain(appName)
      expect(await page.locator('form input[name="csrf"]').inputValue()).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(await page.locator('form').getAttribute('method')).toBe('post')
      expect(await page.getByRole('button', { name: 'Confirm' }).isVisible()).toBe(true)
      expect(await page.getByRole('button', { name: 'Cancel' }).isVisible()).toBe(true)
      // A seller-facing page: no link to the operator console.
      expect(await page.locator('a[href^="/connections"], a[href="/"]').count()).toBe(0)
      await page.screenshot({ path: CONFIRMATION_SHOT, fullPage: true })
      // Still nothing linked before Confirm.
      expect((await connections()).map((c) => c.selling_partner_id)).not.toContain(sellingPartnerId)

      const [callback] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/callback'),
        page.getByRole('button', { name: 'Confirm' }).click(),
      ])
      expect(callback.status()).toBe(303)
      // Back through Amazon's confirm URL to our callback, then the (dev) landing.
      await page.waitForURL((target) => /^\/connections\/con_[A-Za-z0-9_-]+$/.test(target.pathname))
      const connectionId = new URL(page.url()).pathname.split('/')[2] ?? ''
      await page.screenshot({ path: join(shots, 'login-uri-landing.png'), fullPage: true })

      const stored = (await connections()).find((c) => c.selling_partner_id === sellingPartnerId)
      expect(stored).toMatchObject({ id: connectionId, tenant_id: 'tenant-browser' })
      const shown = await runCli(['connections', 'show', connectionId, '--data', dataDir, '--json'])
      expect(JSON.parse(shown.stdout)).toMatchObject({ status: 'active', tenant_id: 'tenant-browser' })

      expect(readFileSync(CONFIRMATION_SHOT).subarray(1, 4).toString('latin1')).toBe('PNG')
      expect(statSync(CONFIRMATION_SHOT).size).toBeGreaterThan(10_000)
      expect(problems).toEqual([])
    } finally {
      await context.close()
    }
  })

  it('Cancel on the confirmation page: "Nothing was connected", and no connection', async () => {
    if (!browser) throw new Error('no browser')
    const problems: Problem[] = []
    const context = await watchedContext(browser, problems)
    try {
      const page = await context.newPage()
      const sellingPartnerId = randomSellingPartnerId()
      const countBefore = (await connections()).length
      await toSignIn(page, sellingPartnerId)
      await signInAs(page, 'tenant-cancel', 'Cancel Corp')
      const continueUrl = page.url()

      await page.getByRole('button', { name: 'Cancel' }).click()
      await page.waitForLoadState()
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Nothing was connected')
      expect(await page.getByText(`${appName} was not given access`).count()).toBe(1)
      await page.screenshot({ path: join(shots, 'login-uri-cancelled.png'), fullPage: true })

      // The request is over: the confirmation link no longer opens.
      const reopened = await page.goto(continueUrl)
      expect(reopened?.status()).toBeGreaterThanOrEqual(400)
      expect(await page.locator('code').textContent()).toMatch(/^login_request_(invalid|closed)$/)

      const rows = await connections()
      expect(rows).toHaveLength(countBefore)
      expect(rows.map((r) => r.selling_partner_id)).not.toContain(sellingPartnerId)
      // The refused reopen is the expected answer, not a problem of the page.
      expect(problems.filter((p) => !isRefusedReopen(p, continueUrl))).toEqual([])
    } finally {
      await context.close()
    }
  })
})

/** Chromium logs a console error for a document answered with 4xx: the reopened, spent confirmation link. */
function isRefusedReopen(problem: Problem, continueUrl: string): boolean {
  return (
    problem.kind === 'console' &&
    problem.page === continueUrl &&
    problem.text.startsWith('error: Failed to load resource: the server responded with a status of 4')
  )
}
