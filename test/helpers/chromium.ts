/**
 * Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by playwright-core (it never
 * downloads a browser), and a browser context that records every console error, uncaught page error, CSP
 * violation (reported by the page itself through `securitypolicyviolation`, and by Chromium on the console),
 * failed request and failed subresource, so a test can assert that a page had none.
 */
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Starts Debian's Chromium headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
}

export interface Problem {
  readonly page: string
  readonly kind: 'console' | 'pageerror' | 'csp' | 'requestfailed' | 'subresource'
  readonly text: string
}

/**
 * A browser context that records every console error, uncaught page error, CSP violation (reported by the
 * page itself through `securitypolicyviolation`, and by Chromium on the console) and failed subresource.
 */
export async function watchedContext(browser: Browser, problems: Problem[]): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  await context.exposeBinding('__reportCspViolation', ({ page }, violation: string) => {
    problems.push({ page: page.url(), kind: 'csp', text: violation })
  })
  // Runs before any page script, through the DevTools protocol, so the page's own CSP does not block it.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      const report = (window as unknown as { __reportCspViolation: (v: string) => void }).__reportCspViolation
      report(`${event.violatedDirective} blocked ${event.blockedURI}`)
    })
  })
  context.on('page', (page) => watchPage(page, problems))
  return context
}

export function watchPage(page: Page, problems: Problem[]): void {
  page.on('console', (message) => {
    if (message.type() === 'error') {
      const where = message.location().url
      problems.push({
        page: page.url(),
        kind: 'console',
        text: `${message.type()}: ${message.text()}${where ? ` (${where})` : ''}`,
      })
    }
  })
  page.on('pageerror', (error) => problems.push({ page: page.url(), kind: 'pageerror', text: error.message }))
  page.on('requestfailed', (request) =>
    problems.push({
      page: page.url(),
      kind: 'requestfailed',
      text: `${request.url()} ${request.failure()?.errorText ?? ''}`,
    }),
  )
  page.on('response', (response) => {
    if (response.request().resourceType() !== 'document' && response.status() >= 400) {
      problems.push({ page: page.url(), kind: 'subresource', text: `${response.status()} ${response.url()}` })
    }
  })
}
