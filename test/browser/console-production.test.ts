/**
 * The operator console in headless Chromium against production configuration (startStack: `__Host-` cookies,
 * no dev pseudo-session): the dashboard sends the browser to sign in, a wrong password is refused, the right
 * one opens the console, the connect form runs the flow at the simulated Seller Central, Sign out ends the
 * session. Every console error, page error and CSP violation is recorded and asserted absent.
 */
import { existsSync } from 'node:fs'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createOperator } from '../../src/core/access/operators.ts'
import { CHROMIUM, launchChromium, type Problem, watchedContext } from '../helpers/chromium.ts'
import { randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const EMAIL = 'ops@example.com'
const PASSWORD = 'a long operator passphrase'

describe('operator console in production configuration', () => {
  let stack: Stack
  let browser: Browser | undefined

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing`).toBe(true)
    stack = await startStack()
    await createOperator(stack.runtime.store, stack.runtime.deps, stack.runtime.events, {
      email: EMAIL,
      password: PASSWORD,
    })
    browser = await launchChromium()
  })
  afterAll(async () => {
    await browser?.close()
    await stack?.close()
  })

  it('signs in, connects a seller through the form, sees it listed, and signs out', async () => {
    if (!browser) throw new Error('no browser')
    const problems: Problem[] = []
    const context = await watchedContext(browser, problems)
    try {
      const page = await context.newPage()
      await page.goto(`${stack.serviceUrl}/`)
      expect(new URL(page.url()).pathname).toBe('/console/sign-in')
      expect(await page.title()).toBe('Sign in · sp-connect')

      await page.getByLabel('Email').fill(EMAIL)
      await page.getByLabel('Password').fill('not the right password')
      const [refused] = await Promise.all([
        page.waitForResponse(
          (r) => new URL(r.url()).pathname === '/console/sign-in' && r.request().method() === 'POST',
        ),
        page.getByRole('button', { name: 'Sign in' }).click(),
      ])
      expect(refused.status()).toBe(401)
      await page.waitForLoadState()
      expect(await page.locator('#sign-in-error').textContent()).toBe('The email or password is not right.')

      await page.getByLabel('Email').fill(EMAIL)
      await page.getByLabel('Password').fill(PASSWORD)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.waitForURL(`${stack.serviceUrl}/`)
      expect(await page.title()).toBe('Connections · sp-connect')
      const cookies = await context.cookies()
      const session = cookies.find((c) => c.name === '__Host-sp-connect-console')
      expect(session?.httpOnly).toBe(true)
      expect(session?.secure).toBe(true)
      expect(session?.sameSite).toBe('Strict')

      const sellingPartnerId = randomSellingPartnerId()
      await page.locator('#connect-form').getByLabel('Tenant (optional)').fill('tenant-prod')
      await page.getByRole('button', { name: 'Connect a seller account' }).click()
      await page.waitForURL((target) => target.origin === stack.simulatorUrl)
      await page.getByLabel('Selling partner id').fill(sellingPartnerId)
      await page.getByRole('button', { name: 'Confirm' }).click()
      await page.waitForURL((target) => target.origin === stack.serviceUrl && target.pathname !== '/callback')

      await page.goto(`${stack.serviceUrl}/?tenant=tenant-prod`)
      const row = page.locator('#connections tbody tr')
      expect(await row.count()).toBe(1)
      expect(await row.locator('td').first().textContent()).toBe(sellingPartnerId)

      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.waitForURL(`${stack.serviceUrl}/console/sign-in`)
      await page.goto(`${stack.serviceUrl}/`)
      expect(new URL(page.url()).pathname).toBe('/console/sign-in')

      // The 401 of the refused sign-in is the expected answer, not a problem of the page; the standalone
      // simulator (another origin, no favicon) is not under test here.
      const ours = problems.filter((p) => new URL(p.page).origin === stack.serviceUrl)
      expect(ours.filter((p) => !p.text.includes('status of 401'))).toEqual([])
    } finally {
      await context.close()
    }
  })
})
