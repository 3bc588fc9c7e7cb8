/**
 * The website workflow in headless Chromium with sp-connect under a base path (SP_CONNECT_BASE_PATH=/amazon,
 * production configuration): the connect link, the simulated consent page, the callback and the landing, with
 * the binding cookie scoped to the prefix and no console error, failed subresource or CSP violation.
 */
import { existsSync } from 'node:fs'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, launchChromium, type Problem, watchedContext } from '../helpers/chromium.ts'
import { randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

describe('website workflow under /amazon in headless Chromium', () => {
  let stack: Stack
  let browser: Browser | undefined

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true)
    stack = await startStack({ basePath: '/amazon' })
    browser = await launchChromium()
  })
  afterAll(async () => {
    await browser?.close()
    await stack?.close()
  })

  it('connects a seller from a connect link and lands on /amazon/connected', async () => {
    const problems: Problem[] = []
    const context = await watchedContext(browser as Browser, problems)
    const page = await context.newPage()
    const created = await stack.api('POST', '/v1/connect-sessions', { tenant_id: 'acme', region: 'na' })
    expect(created.status).toBe(201)
    expect(String(created.json['url'])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/amazon\/connect\/s\//)

    await page.goto(String(created.json['url']))
    await page.waitForURL((target) => target.href.startsWith(stack.simulatorUrl))
    const binding = (await context.cookies()).find((c) => c.name === '__Secure-sp-connect-binding')
    expect(binding?.path).toBe('/amazon')

    const sellingPartnerId = randomSellingPartnerId()
    await page.getByLabel('Selling partner id').fill(sellingPartnerId)
    await page.getByRole('button', { name: 'Confirm' }).click()
    await page.waitForURL(`${stack.serviceUrl}/connected`)
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBeTruthy()
    const styled = await page.evaluate(() => document.styleSheets.length)
    expect(styled).toBeGreaterThan(0)

    expect(await stack.runtime.store.findConnection(sellingPartnerId, 'na')).toMatchObject({
      tenantId: 'acme',
      status: 'active',
    })
    // Chromium asks every origin for /favicon.ico: outside the prefix that is the host app's (here nobody's).
    expect(problems.filter((p) => !p.text.includes('/favicon.ico'))).toEqual([])
    await context.close()
  })
})
