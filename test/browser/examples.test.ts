/**
 * The examples under examples/ as a user runs them: each copied to a temp folder, its `sp-connect` dependency
 * pointed at the packed tarball (test/helpers/package.ts), `npm install` (the framework from the npm registry),
 * started on a free port, then: the app's own JSON route next to its body parser, sp-connect's `/v1` POST
 * through the same host (its body must reach sp-connect), the consent flow in headless Chromium against the
 * simulator under /amazon, and the app's own `/token` route getting an access token with
 * `sp.tokens.getAccessToken`. Each example's timings are printed (install, start, flow).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, launchChromium, type Problem, watchedContext } from '../helpers/chromium.ts'
import { randomSellingPartnerId } from '../helpers/flows.ts'
import { childEnv, packTarball, REPO_ROOT, SETUP_TIMEOUT_MS, sh } from '../helpers/package.ts'

interface Example {
  readonly name: string
  /** The command that starts it, after `npm install`; PORT is in the environment. */
  readonly start: (port: number) => readonly string[]
  /** Where the shared sp-connect wiring lives in it. */
  readonly wiring: string
}

const EXAMPLES: readonly Example[] = [
  { name: 'node-http', start: () => ['server.js'], wiring: 'sp-connect.js' },
  { name: 'express', start: () => ['server.js'], wiring: 'sp-connect.js' },
  { name: 'fastify', start: () => ['server.js'], wiring: 'sp-connect.js' },
  // `next dev` compiles each route on its first request: faster here than a production build of the whole app.
  {
    name: 'nextjs',
    start: (port) => ['node_modules/next/dist/bin/next', 'dev', '-H', '127.0.0.1', '-p', String(port)],
    wiring: 'lib/sp-connect.js',
  },
]

/** Installing a framework and compiling Next.js on a loaded 2-core machine. */
const EXAMPLE_TIMEOUT_MS = 420_000
const READY_TIMEOUT_MS = 180_000

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Polls `url` until it answers 200 (the app is up and, for Next.js, the route compiled). */
async function waitFor(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${output()}`)
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    )
    if (status === 200) return
    await sleep(250)
  }
  throw new Error(`${url} did not answer 200:\n${output()}`)
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])
  if (!done) {
    child.kill('SIGKILL')
    await exited
  }
}

describe('examples/ installed from the tarball, in headless Chromium', () => {
  let tarball: string
  let browser: Browser | undefined
  const timings: Record<string, Record<string, number>> = {}

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true)
    tarball = await packTarball()
    browser = await launchChromium()
  }, SETUP_TIMEOUT_MS)
  afterAll(async () => {
    await browser?.close()
    // For the report: how long each example takes (CI's budget is 90 minutes).
    console.log(`example timings (ms): ${JSON.stringify(timings)}`)
  })

  it('share one sp-connect wiring file, so the copies cannot drift', () => {
    const [first, ...rest] = EXAMPLES.map((e) =>
      readFileSync(join(REPO_ROOT, 'examples', e.name, e.wiring), 'utf8'),
    )
    for (const copy of rest) expect(copy).toBe(first)
  })

  for (const example of EXAMPLES) {
    it(`${example.name}: install, start, consent in Chromium, a token in the app's code, stop`, {
      timeout: EXAMPLE_TIMEOUT_MS,
    }, async () => {
      const started = Date.now()
      const times: Record<string, number> = {}
      timings[example.name] = times
      const dir = mkdtempSync(join(tmpdir(), `sp-connect-example-${example.name}-`))
      let child: ChildProcess | undefined
      let output = ''
      try {
        cpSync(join(REPO_ROOT, 'examples', example.name), dir, {
          recursive: true,
          filter: (source) => !/node_modules|\.next/.test(source),
        })
        const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
          dependencies: Record<string, string>
        }
        manifest.dependencies['sp-connect'] = `file:${tarball}`
        writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
        await sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], dir)
        times['install'] = Date.now() - started

        const port = await freePort()
        const origin = `http://127.0.0.1:${port}`
        const apiKey = randomBytes(24).toString('base64url')
        // The example keeps its SQLite file in the temp dir: this one, removed with the copy.
        const scratch = join(dir, 'tmp')
        mkdirSync(scratch)
        child = spawn(process.execPath, [...example.start(port)], {
          cwd: dir,
          env: childEnv({
            PORT: String(port),
            SP_CONNECT_API_KEY: apiKey,
            NEXT_TELEMETRY_DISABLED: '1',
            TMPDIR: scratch,
          }),
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        child.stdout?.on('data', (chunk) => {
          output += chunk
        })
        child.stderr?.on('data', (chunk) => {
          output += chunk
        })
        const running = child
        await waitFor(`${origin}/token`, running, () => output)
        await waitFor(`${origin}/amazon/healthz`, running, () => output)
        times['start'] = Date.now() - started - times['install']

        // The app's own body parser and sp-connect's own body reading, side by side.
        const echo = await fetch(`${origin}/echo`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ hello: 'host' }),
        })
        expect(await echo.json()).toEqual({ hello: 'host' })
        const session = await fetch(`${origin}/amazon/v1/connect-sessions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ tenant_id: 'other-tenant', region: 'eu' }),
        })
        expect(session.status, output).toBe(201)
        expect(((await session.json()) as { url: string }).url).toMatch(/\/amazon\/connect\/s\//)
        expect(await (await fetch(`${origin}/token`)).json()).toEqual({ connected: false, gotToken: false })

        const problems: Problem[] = []
        const context = await watchedContext(browser as Browser, problems)
        const page = await context.newPage()
        await page.goto(`${origin}/connect`)
        await page.waitForURL((url) => url.origin !== origin)
        await page.getByLabel('Selling partner id').fill(randomSellingPartnerId())
        await page.getByRole('button', { name: 'Confirm' }).click()
        await page.waitForURL(`${origin}/amazon/connected`)
        await context.close()
        // Browsers ask every origin for /favicon.ico; these apps (and the simulator) have none.
        expect(problems.filter((p) => !p.text.includes('/favicon.ico'))).toEqual([])

        const token = (await (await fetch(`${origin}/token`)).json()) as Record<string, unknown>
        expect(token).toMatchObject({ connected: true, gotToken: true })
        expect(token['expiresAt']).toEqual(expect.any(Number))
        times['flow'] = Date.now() - started - times['install'] - times['start']
      } finally {
        if (child) await stop(child)
        times['total'] = Date.now() - started
        rmSync(dir, { recursive: true, force: true })
      }
    })
  }
})
