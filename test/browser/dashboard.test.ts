/**
 * The dashboard in a real browser: Debian's headless Chromium (through playwright-core) against
 * `sp-connect dev` running as a child process. Connects a seller through the simulated Seller Central and
 * cancels another, with every console error, page error and CSP violation recorded and asserted absent.
 *
 * Set SP_CONNECT_SCREENSHOTS=<dir> to keep the screenshots the test takes.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, launchChromium, type Problem, watchedContext } from '../helpers/chromium.ts'
import { type DevServer, runCli, startDev } from '../helpers/cli.ts'
import { randomSellingPartnerId } from '../helpers/flows.ts'

const CONSENT_PATH = '/__amazon/sellercentral.amazon.com/apps/authorize/consent'
/** How the dashboard prints times: `formatTime` in src/server/pages/layout.ts. */
const SHOWN_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/

describe('dashboard in headless Chromium', () => {
  let dataDir: string
  let shots: string
  let dev: DevServer | undefined
  let url: string
  let appName: string
  let browser: Browser | undefined
  const keepShots = process.env['SP_CONNECT_SCREENSHOTS']

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true)
    dataDir = mkdtempSync(join(tmpdir(), 'sp-connect-browser-'))
    shots = keepShots ?? join(dataDir, 'screenshots')
    mkdirSync(shots, { recursive: true })
    dev = await startDev(['--port', '0', '--data', dataDir])
    url = dev.url
    appName = (JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8')) as { appName: string }).appName
    browser = await launchChromium()
  })
  afterAll(async () => {
    await browser?.close()
    await dev?.stop('SIGKILL')
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  it('connects a seller: dashboard → simulated Seller Central consent → Confirm → listed as active', async () => {
    if (!browser) throw new Error('no browser')
    const problems: Problem[] = []
    const context = await watchedContext(browser, problems)
    try {
      const page = await context.newPage()
      const sellingPartnerId = randomSellingPartnerId()

      const dashboard = await page.goto(`${url}/`)
      expect(dashboard?.status()).toBe(200)
      expect(await page.title()).toBe('Connections · sp-connect')
      expect(await page.getByText('No connections yet.').isVisible()).toBe(true)
      // The stylesheet applied (Pico's classless CSS): the button is not the browser's default grey.
      const button = page.getByRole('button', { name: 'Connect a seller account' })
      expect(await button.evaluate((el) => getComputedStyle(el).backgroundColor)).not.toBe(
        'rgb(239, 239, 239)',
      )

      await page.locator('#connect-form').getByLabel('Region').selectOption('na')
      await page.locator('#connect-form').getByLabel('Account type').selectOption('seller')
      await button.click()
      await page.waitForURL((target) => target.pathname === CONSENT_PATH)

      // The simulated Seller Central consent page: the app's name, a seller id field, Confirm and Cancel.
      expect(new URL(page.url()).origin).toBe(url)
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(`Authorize ${appName}`)
      expect(await page.getByText('not a real Amazon page').isVisible()).toBe(true)
      expect(await page.getByRole('button', { name: 'Confirm' }).isVisible()).toBe(true)
      expect(await page.getByRole('button', { name: 'Cancel' }).isVisible()).toBe(true)
      const idField = page.getByLabel('Selling partner id')
      expect(await idField.inputValue()).toMatch(/^[A-Z0-9]+$/)
      await idField.fill(sellingPartnerId)
      const consentShot = join(shots, 'consent.png')
      await page.screenshot({ path: consentShot, fullPage: true })

      await page.getByRole('button', { name: 'Confirm' }).click()
      await page.waitForURL((target) => /^\/connections\/con_[A-Za-z0-9_-]+$/.test(target.pathname))
      const landed = new URL(page.url())
      expect(landed.search).toBe('?connected=1')
      const connectionId = landed.pathname.split('/')[2] ?? ''
      expect(await page.locator('#connected-notice').textContent()).toBe(
        'Connected. The account is authorized.',
      )
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(sellingPartnerId)

      await page.goto(`${url}/`)
      const row = page.locator(`tr[data-connection-id="${connectionId}"]`)
      const cells = (await row.locator('td').allTextContents()).map((cell) => cell.trim())
      expect(cells.slice(0, 4)).toEqual([sellingPartnerId, 'NA', 'seller', 'active'])
      const [authorized = '', reauthorizeBy = ''] = cells.slice(4)
      expect(authorized).toMatch(SHOWN_TIME)
      expect(reauthorizeBy).toMatch(SHOWN_TIME)
      const asDate = (shown: string) => Date.parse(shown.replace(' UTC', 'Z').replace(' ', 'T'))
      expect(asDate(reauthorizeBy) - asDate(authorized)).toBe(365 * 24 * 3600 * 1000)
      expect(await row.getByRole('link', { name: sellingPartnerId }).getAttribute('href')).toBe(
        `/connections/${connectionId}`,
      )
      const dashboardShot = join(shots, 'dashboard.png')
      await page.screenshot({ path: dashboardShot, fullPage: true })

      // The page shows what the store holds.
      const listed = await runCli(['connections', 'list', '--data', dataDir, '--json'])
      const [stored] = JSON.parse(listed.stdout) as { id: string; authorized_at: string }[]
      expect(stored?.id).toBe(connectionId)
      expect(asDate(authorized)).toBe(Math.floor(Date.parse(stored?.authorized_at ?? '') / 1000) * 1000)

      for (const shot of [consentShot, dashboardShot]) {
        expect(readFileSync(shot).subarray(1, 4).toString('latin1')).toBe('PNG')
        expect(statSync(shot).size).toBeGreaterThan(10_000)
      }
      expect(problems).toEqual([])
    } finally {
      await context.close()
    }
  })

  it('Cancel on the consent page lands on the fixed "cancelled" error page and connects nothing', async () => {
    if (!browser) throw new Error('no browser')
    const problems: Problem[] = []
    const context = await watchedContext(browser, problems)
    try {
      const page = await context.newPage()
      const sellingPartnerId = randomSellingPartnerId()
      const before = await runCli(['connections', 'list', '--data', dataDir, '--json'])
      const countBefore = (JSON.parse(before.stdout) as unknown[]).length

      await page.goto(`${url}/`)
      await page.getByRole('button', { name: 'Connect a seller account' }).click()
      await page.waitForURL((target) => target.pathname === CONSENT_PATH)
      await page.getByLabel('Selling partner id').fill(sellingPartnerId)
      const [response] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/callback'),
        page.getByRole('button', { name: 'Cancel' }).click(),
      ])
      expect(response.status()).toBe(400)
      await page.waitForLoadState()
      expect(new URL(page.url()).pathname).toBe('/callback')
      expect(new URL(page.url()).searchParams.get('error')).toBe('access_denied')
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(
        'Could not connect the account',
      )
      expect(await page.getByText('The authorization was cancelled on Amazon').textContent()).toBe(
        'The authorization was cancelled on Amazon, so no account was connected.',
      )
      expect(await page.locator('code').textContent()).toBe('authorization_cancelled')
      await page.screenshot({ path: join(shots, 'cancelled.png'), fullPage: true })

      // A seller-facing page: it never links to the operator console (issue 7 rule 7).
      expect(await page.locator('a[href="/"]').count()).toBe(0)
      await page.goto(`${url}/`)
      expect(await page.getByText(sellingPartnerId).count()).toBe(0)
      const after = await runCli(['connections', 'list', '--data', dataDir, '--json'])
      const rows = JSON.parse(after.stdout) as { selling_partner_id: string }[]
      expect(rows).toHaveLength(countBefore)
      expect(rows.map((r) => r.selling_partner_id)).not.toContain(sellingPartnerId)

      // The 400 of the error page itself is the expected answer, not a problem of the page.
      expect(problems.filter((p) => !isErrorPageStatus(p))).toEqual([])
    } finally {
      await context.close()
    }
  })

  it('console actions through the page: refresh now, reconnect link, a forged form refused, disconnect', async () => {
    if (!browser) throw new Error('no browser')
    const problems: Problem[] = []
    const context = await watchedContext(browser, problems)
    try {
      const page = await context.newPage()
      const sellingPartnerId = randomSellingPartnerId()
      await page.goto(`${url}/`)
      // The connect button is a form POST carrying a CSRF token, with an optional tenant.
      const form = page.locator('form#connect-form')
      expect(await form.getAttribute('method')).toBe('post')
      expect(await form.getAttribute('action')).toBe('/console/connect')
      expect(await form.locator('input[name="csrf"]').inputValue()).toMatch(/^[A-Za-z0-9_-]{43}$/)
      await page.getByLabel('Tenant (optional)').fill('tenant-browser')
      await page.getByRole('button', { name: 'Connect a seller account' }).click()
      await page.waitForURL((target) => target.pathname === CONSENT_PATH)
      await page.getByLabel('Selling partner id').fill(sellingPartnerId)
      await page.getByRole('button', { name: 'Confirm' }).click()
      await page.waitForURL((target) => /^\/connections\/con_[A-Za-z0-9_-]+$/.test(target.pathname))
      const connectionId = new URL(page.url()).pathname.split('/')[2] ?? ''
      expect(await page.locator('#status').textContent()).toBe('active')

      await page.getByRole('button', { name: 'Refresh now' }).click()
      await page.waitForURL((target) => target.search === '?done=refreshed')
      expect(await page.locator('#action-notice').textContent()).toBe(
        'Refreshed: a new access token was issued.',
      )

      await page.getByRole('button', { name: 'Make a reconnect link' }).click()
      await page.waitForURL(`${url}/console/connections/${connectionId}/reconnect-link`)
      const link = await page.locator('#connect-link').inputValue()
      expect(link).toMatch(new RegExp(`^${url}/connect/s/[A-Za-z0-9_-]{43}$`))
      expect(await page.locator('#connect-link').getAttribute('readonly')).not.toBeNull()
      await page.screenshot({ path: join(shots, 'reconnect-link.png'), fullPage: true })
      await page.getByRole('link', { name: 'Back to the connection' }).click()
      await page.waitForURL(`${url}/connections/${connectionId}`)

      // A forged token: refused with 403, and the connection is untouched.
      const disconnectForm = page.locator(`form[action="/console/connections/${connectionId}/disconnect"]`)
      await disconnectForm.locator('input[name="csrf"]').evaluate((input) => {
        ;(input as HTMLInputElement).value = 'forged'
      })
      const [refused] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/disconnect')),
        page.getByRole('button', { name: 'Disconnect' }).click(),
      ])
      expect(refused.status()).toBe(403)
      await page.waitForLoadState()
      const stillActive = await runCli(['connections', 'show', connectionId, '--data', dataDir, '--json'])
      expect((JSON.parse(stillActive.stdout) as { status: string }).status).toBe('active')

      await page.goto(`${url}/connections/${connectionId}`)
      await page.getByRole('button', { name: 'Disconnect' }).click()
      await page.waitForURL((target) => target.search === '?done=disconnected')
      expect(await page.locator('#status').textContent()).toBe('disconnected')
      expect(await page.getByText('operator:dev').count()).toBeGreaterThan(0)
      const shown = await runCli(['connections', 'show', connectionId, '--data', dataDir, '--json'])
      expect((JSON.parse(shown.stdout) as { status: string }).status).toBe('disconnected')

      // The 403 of the forged post is the expected answer, not a problem of the page.
      expect(problems.filter((p) => !isForbiddenPage(p))).toEqual([])
    } finally {
      await context.close()
    }
  })
})

function isForbiddenPage(problem: Problem): boolean {
  return (
    problem.kind === 'console' &&
    new URL(problem.page).pathname.endsWith('/disconnect') &&
    problem.text.includes('status of 403')
  )
}

/** Chromium logs a console error for a document answered with 4xx; that is the cancelled page's own 400. */
function isErrorPageStatus(problem: Problem): boolean {
  return (
    problem.kind === 'console' &&
    new URL(problem.page).pathname === '/callback' &&
    problem.text.startsWith(
      `error: Failed to load resource: the server responded with a status of 400 (Bad Request) (${problem.page})`,
    )
  )
}
