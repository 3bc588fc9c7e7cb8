/**
 * The operator console (issue 7 rule 6) over real HTTP on loopback, in production configuration: operator
 * sign-in (wrong password, unknown email, lockout), no session fixation, idle and absolute timeouts,
 * sign-out, API keys no longer open it, and every action refused without the session's CSRF token with
 * nothing stored changed.
 */
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createOperator } from '../../src/core/access/operators.ts'
import { BrowserClient, type Hop } from '../helpers/browser-client.ts'
import { snapshotDb } from '../helpers/db-snapshot.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const SESSION_COOKIE = '__Host-sp-connect-console'
const EMAIL = 'ops@example.com'
const PASSWORD = 'correct horse battery staple'
const MINUTE = 60_000

let stack: Stack
let host: string
let serial = 0

function csrfOf(page: Hop): string {
  const token = page.body.match(/name="csrf" value="([^"]+)"/)?.[1]
  if (!token) throw new Error(`no csrf token on ${page.url}`)
  return token
}

async function signInPage(client: BrowserClient): Promise<Hop> {
  const page = await client.get(`${stack.serviceUrl}/console/sign-in`)
  expect(page.status).toBe(200)
  return page
}

async function signIn(client: BrowserClient, email = EMAIL, password = PASSWORD): Promise<Hop> {
  const page = await signInPage(client)
  return client.post(`${stack.serviceUrl}/console/sign-in`, { csrf: csrfOf(page), email, password })
}

/** A new operator (each test its own, so lockouts do not spill over) and a browser signed in as them. */
async function newOperator(): Promise<{ email: string; client: BrowserClient }> {
  const email = `op${++serial}@example.com`
  await createOperator(stack.runtime.store, stack.runtime.deps, stack.runtime.events, {
    email,
    password: PASSWORD,
  })
  const client = new BrowserClient()
  const signedIn = await signIn(client, email)
  expect(signedIn.status).toBe(303)
  expect(signedIn.location).toBe('/')
  return { email, client }
}

async function dashboard(client: BrowserClient): Promise<Hop> {
  return client.get(`${stack.serviceUrl}/`)
}

async function eventsOfType(type: string) {
  return stack.runtime.store.listEvents({ type, limit: 1000 })
}

beforeAll(async () => {
  stack = await startStack()
  host = new URL(stack.serviceUrl).host
  await createOperator(stack.runtime.store, stack.runtime.deps, stack.runtime.events, {
    email: EMAIL,
    password: PASSWORD,
  })
})

afterAll(async () => {
  await stack?.close()
})

describe('signing in', () => {
  it('sends a browser without a session to the sign-in page; an API key in a Basic prompt no longer opens it', async () => {
    const client = new BrowserClient()
    const page = await dashboard(client)
    expect(page.status).toBe(303)
    expect(page.location).toBe('/console/sign-in')

    const basic = Buffer.from(`x:${stack.apiKey}`).toString('base64')
    const withKey = await client.get(`${stack.serviceUrl}/`, { headers: { authorization: `Basic ${basic}` } })
    expect(withKey.status).toBe(303)
    expect(withKey.location).toBe('/console/sign-in')
    expect(withKey.headers.get('www-authenticate')).toBeNull()
    const detail = await client.get(`${stack.serviceUrl}/connections/con_x`, {
      headers: { authorization: `Bearer ${stack.apiKey}` },
    })
    expect(detail.status).toBe(303)
  })

  it('signs in with the right password into a __Host- cookie (Secure, HttpOnly, SameSite=Strict, Path=/)', async () => {
    const client = new BrowserClient()
    const page = await signInPage(client)
    expect(page.headers.getSetCookie().join('\n')).toMatch(/__Host-sp-connect-console-pre=/)
    const result = await client.post(`${stack.serviceUrl}/console/sign-in`, {
      csrf: csrfOf(page),
      email: ` ${EMAIL.toUpperCase()} `,
      password: PASSWORD,
    })
    expect(result.status).toBe(303)
    const cookie = result.headers.getSetCookie().find((line) => line.startsWith(`${SESSION_COOKIE}=`))
    expect(cookie).toBeDefined()
    expect(cookie).toMatch(/; Secure/i)
    expect(cookie).toMatch(/; HttpOnly/i)
    expect(cookie).toMatch(/; SameSite=Strict/i)
    expect(cookie).toMatch(/; Path=\//i)
    expect(cookie).not.toMatch(/domain=/i)
    // 256 random bits, stored only as a hash.
    const id = client.cookie(host, SESSION_COOKIE) ?? ''
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(snapshotOf('operator_sessions')).not.toContain(id)

    const home = await dashboard(client)
    expect(home.status).toBe(200)
    expect(home.body).toContain('Connect a seller account')
    expect(home.body).toContain(EMAIL)
    expect((await eventsOfType('operator.signed_in')).length).toBeGreaterThan(0)
  })

  it('refuses a wrong password and an unknown email alike, audits both, and never records the password', async () => {
    const { email } = await newOperator()
    const wrongPassword = 'not-the-password-1234'
    const client = new BrowserClient()
    const wrong = await signIn(client, email, wrongPassword)
    const unknown = await signIn(client, `nobody${serial}@example.com`, wrongPassword)
    for (const hop of [wrong, unknown]) {
      expect(hop.status).toBe(401)
      expect(hop.body).toContain('The email or password is not right.')
      expect(client.cookie(host, SESSION_COOKIE)).toBeUndefined()
    }
    const failures = await eventsOfType('operator.sign_in_failed')
    const forAccount = failures.find((e) => e.data['operator'] === email)
    expect(forAccount?.data['reason']).toBe('wrong_password')
    expect(failures.some((e) => e.data['reason'] === 'unknown_account')).toBe(true)
    expect(JSON.stringify(failures)).not.toContain(wrongPassword)
    expect(stack.logger.text()).not.toContain(wrongPassword)
    expect(stack.logger.text()).not.toContain(PASSWORD)
  })

  it('locks an email out after repeated bad passwords, even for the right one, until the window passes', async () => {
    const email = `locked${++serial}@example.com`
    await createOperator(stack.runtime.store, stack.runtime.deps, stack.runtime.events, {
      email,
      password: PASSWORD,
    })
    const client = new BrowserClient()
    for (let i = 0; i < 5; i++) expect((await signIn(client, email, `wrong-password-${i}`)).status).toBe(401)
    const locked = await signIn(client, email, PASSWORD)
    expect(locked.status).toBe(429)
    expect(locked.headers.get('retry-after')).toBeTruthy()
    expect(client.cookie(host, SESSION_COOKIE)).toBeUndefined()
    const throttled = (await eventsOfType('operator.sign_in_failed')).filter(
      (e) => e.data['operator'] === email && e.data['reason'] === 'throttled',
    )
    expect(throttled).toHaveLength(1)
    // Another operator is not affected.
    expect((await signIn(new BrowserClient())).status).toBe(303)

    stack.clock.advance(16 * MINUTE)
    expect((await signIn(client, email, PASSWORD)).status).toBe(303)
  })

  it('refuses a sign-in without the sign-in page token, with a wrong one, or with another browser’s', async () => {
    const client = new BrowserClient()
    const page = await signInPage(client)
    const other = new BrowserClient()
    const otherPage = await signInPage(other)
    const before = snapshotDb(stack.dbPath)
    for (const csrf of [undefined, 'x'.repeat(43), csrfOf(otherPage)]) {
      const form: Record<string, string> = { email: EMAIL, password: PASSWORD }
      if (csrf !== undefined) form['csrf'] = csrf
      const hop = await client.post(`${stack.serviceUrl}/console/sign-in`, form)
      expect(hop.status).toBe(403)
      expect(client.cookie(host, SESSION_COOKIE)).toBeUndefined()
    }
    expect(snapshotDb(stack.dbPath)).toBe(before)
    // And a cross-origin post is refused even with the right token.
    const crossOrigin = await fetch(`${stack.serviceUrl}/console/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'https://evil.example',
        cookie: `__Host-sp-connect-console-pre=${client.cookie(host, '__Host-sp-connect-console-pre')}`,
      },
      body: new URLSearchParams({ csrf: csrfOf(page), email: EMAIL, password: PASSWORD }).toString(),
    })
    expect(crossOrigin.status).toBe(403)
  })

  it('never adopts a session id planted before sign-in, and a new sign-in ends the previous session', async () => {
    const client = new BrowserClient()
    const planted = 'A'.repeat(43)
    client.setCookie(host, SESSION_COOKIE, planted)
    expect((await dashboard(client)).status).toBe(303)
    expect((await signIn(client)).status).toBe(303)
    const first = client.cookie(host, SESSION_COOKIE)
    expect(first).not.toBe(planted)

    expect((await signIn(client)).status).toBe(303)
    const second = client.cookie(host, SESSION_COOKIE)
    expect(second).not.toBe(first)
    const replay = new BrowserClient()
    replay.setCookie(host, SESSION_COOKIE, first ?? '')
    expect((await dashboard(replay)).status).toBe(303)
    expect((await dashboard(client)).status).toBe(200)
  })
})

describe('session lifetime', () => {
  it('ends after 30 minutes without a request', async () => {
    const { client } = await newOperator()
    stack.clock.advance(29 * MINUTE)
    expect((await dashboard(client)).status).toBe(200)
    // Each request slides the idle deadline.
    stack.clock.advance(29 * MINUTE)
    expect((await dashboard(client)).status).toBe(200)
    stack.clock.advance(31 * MINUTE)
    const expired = await dashboard(client)
    expect(expired.status).toBe(303)
    expect(expired.location).toBe('/console/sign-in')
  })

  it('ends 12 hours after sign-in however busy', async () => {
    const { client } = await newOperator()
    for (let elapsed = 0; elapsed < 12 * 60 - 20; elapsed += 20) {
      stack.clock.advance(20 * MINUTE)
      expect((await dashboard(client)).status).toBe(200)
    }
    stack.clock.advance(20 * MINUTE)
    expect((await dashboard(client)).status).toBe(303)
  })

  it('signs out with a POST carrying the token; the old cookie is then worthless', async () => {
    const { client, email } = await newOperator()
    const page = await dashboard(client)
    const id = client.cookie(host, SESSION_COOKIE) ?? ''
    // A GET to the sign-out address does nothing.
    expect((await client.get(`${stack.serviceUrl}/console/sign-out`)).status).toBe(404)
    expect((await dashboard(client)).status).toBe(200)

    const out = await client.post(`${stack.serviceUrl}/console/sign-out`, { csrf: csrfOf(page) })
    expect(out.status).toBe(303)
    expect(out.location).toBe('/console/sign-in')
    expect(client.cookie(host, SESSION_COOKIE)).toBeUndefined()
    const replay = new BrowserClient()
    replay.setCookie(host, SESSION_COOKIE, id)
    expect((await dashboard(replay)).status).toBe(303)
    const signedOut = await eventsOfType('operator.signed_out')
    expect(signedOut.some((e) => e.data['by'] === `operator:${email}`)).toBe(true)
  })
})

describe('console actions', () => {
  let connectionId: string

  beforeAll(async () => {
    const connected = await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-console' })
    connectionId = connected.connectionId
  })

  function actionsFor(): { path: string; form: Record<string, string> }[] {
    return [
      { path: `/console/connections/${connectionId}/disconnect`, form: {} },
      { path: `/console/connections/${connectionId}/refresh`, form: {} },
      { path: `/console/connections/${connectionId}/reconnect-link`, form: {} },
      { path: '/console/connect-links', form: { tenant: 'tenant-console', region: 'na', type: 'seller' } },
      { path: '/console/connect', form: { region: 'na', type: 'seller' } },
      { path: '/console/sign-out', form: {} },
    ]
  }

  it('refuses every action without the token, with a wrong one, or with another session’s: 403, nothing changed', async () => {
    const { client } = await newOperator()
    const { client: other } = await newOperator()
    const othersToken = csrfOf(await dashboard(other))
    const before = snapshotDb(stack.dbPath)
    for (const action of actionsFor()) {
      for (const csrf of [undefined, '', 'x'.repeat(43), othersToken]) {
        const form = csrf === undefined ? action.form : { ...action.form, csrf }
        const hop = await client.post(`${stack.serviceUrl}${action.path}`, form)
        expect(hop.status, `${action.path} with ${csrf}`).toBe(403)
        expect(hop.headers.getSetCookie().join('')).not.toContain('sp-connect-binding')
      }
      // No session at all: refused too.
      const anonymous = await new BrowserClient().post(`${stack.serviceUrl}${action.path}`, action.form)
      expect(anonymous.status).toBe(401)
    }
    expect(snapshotDb(stack.dbPath)).toBe(before)
    // The session is still usable: nothing was signed out.
    expect((await dashboard(client)).status).toBe(200)
  })

  it('GET requests never change anything, and the action addresses do not answer GET', async () => {
    const { client } = await newOperator()
    const before = snapshotDb(stack.dbPath)
    for (const path of ['/', `/connections/${connectionId}`, '/?status=active&tenant=tenant-console']) {
      expect((await client.get(`${stack.serviceUrl}${path}`)).status).toBe(200)
    }
    for (const action of actionsFor()) {
      const query = new URLSearchParams({ ...action.form, csrf: csrfOf(await dashboard(client)) })
      expect((await client.get(`${stack.serviceUrl}${action.path}?${query}`)).status).toBe(404)
    }
    expect((await client.get(`${stack.serviceUrl}/connect?region=na&type=seller`)).status).toBe(404)
    expect(snapshotDb(stack.dbPath)).toBe(before)
  })

  it('makes a reconnect link and a connect link, each shown once, and never shows a token', async () => {
    const { client } = await newOperator()
    const token = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(token.status).toBe(200)
    const accessToken = String(token.json['access_token'])

    const detail = await client.get(`${stack.serviceUrl}/connections/${connectionId}`)
    expect(detail.status).toBe(200)
    expect(detail.body).not.toContain(accessToken)
    const reconnect = await client.post(
      `${stack.serviceUrl}/console/connections/${connectionId}/reconnect-link`,
      {
        csrf: csrfOf(detail),
      },
    )
    expect(reconnect.status).toBe(200)
    const link = reconnect.body.match(/id="connect-link" value="([^"]+)"/)?.[1] ?? ''
    expect(link).toMatch(new RegExp(`^${stack.serviceUrl}/connect/s/[A-Za-z0-9_-]{43}$`))
    // The link works: it starts the flow at the simulated Seller Central.
    const start = await new BrowserClient().get(link)
    expect(start.status).toBe(303)
    expect(start.location?.startsWith(stack.simulatorUrl)).toBe(true)

    const home = await dashboard(client)
    expect(home.body).not.toContain(accessToken)
    expect(home.body).not.toContain(link)
    const made = await client.post(`${stack.serviceUrl}/console/connect-links`, {
      csrf: csrfOf(home),
      tenant: 'tenant-new',
      region: 'eu',
      type: 'seller',
    })
    expect(made.status).toBe(200)
    expect(made.body).toMatch(/\/connect\/s\/[A-Za-z0-9_-]{43}"/)
    expect(made.body).toContain('tenant-new')
  })

  it('starts a website flow from the connect form (a POST), binding this browser', async () => {
    const { client } = await newOperator()
    const home = await dashboard(client)
    const started = await client.post(`${stack.serviceUrl}/console/connect`, {
      csrf: csrfOf(home),
      region: 'na',
      type: 'seller',
      tenant: 'tenant-form',
    })
    expect(started.status).toBe(303)
    expect(started.location?.startsWith(stack.simulatorUrl)).toBe(true)
    expect(client.cookie(host, '__Host-sp-connect-binding')).toBeTruthy()
  })

  it('refreshes now, then disconnects, audited as the operator', async () => {
    const { client, email } = await newOperator()
    const before = await stack.runtime.store.getConnection(connectionId)
    const detail = await client.get(`${stack.serviceUrl}/connections/${connectionId}`)
    stack.clock.advance(1000)
    const refreshed = await client.post(`${stack.serviceUrl}/console/connections/${connectionId}/refresh`, {
      csrf: csrfOf(detail),
    })
    expect(refreshed.status).toBe(303)
    expect(refreshed.location).toBe(`/connections/${connectionId}?done=refreshed`)
    const after = await stack.runtime.store.getConnection(connectionId)
    expect(after?.lastRefreshAt).toBeGreaterThan(before?.lastRefreshAt ?? before?.authorizedAt ?? 0)
    expect(after?.version).toBeGreaterThan(before?.version ?? 0)

    const disconnected = await client.post(
      `${stack.serviceUrl}/console/connections/${connectionId}/disconnect`,
      { csrf: csrfOf(detail) },
    )
    expect(disconnected.status).toBe(303)
    expect((await stack.runtime.store.getConnection(connectionId))?.status).toBe('disconnected')
    const events = await stack.runtime.store.listEvents({ connectionId, type: 'connection.disconnected' })
    expect(events[0]?.data['by']).toBe(`operator:${email}`)
    const page = await client.get(`${stack.serviceUrl}${disconnected.location}`)
    expect(page.body).toContain('Disconnected. Its tokens are deleted.')
    expect(page.body).toContain(`operator:${email}`)
  })
})

function snapshotOf(table: string): string {
  // The raw rows, to prove the session id itself is not stored.
  const db = new DatabaseSync(stack.dbPath, { readOnly: true })
  try {
    return JSON.stringify(db.prepare(`SELECT * FROM ${table}`).all())
  } finally {
    db.close()
  }
}

describe('configured timeouts', () => {
  it('takes the idle and absolute timeouts from SP_CONNECT_CONSOLE_IDLE_MINUTES and _ABSOLUTE_HOURS', async () => {
    const short = await startStack({
      env: { SP_CONNECT_CONSOLE_IDLE_MINUTES: '5', SP_CONNECT_CONSOLE_ABSOLUTE_HOURS: '1' },
    })
    try {
      expect(short.runtime.config.console).toEqual({
        idleTimeoutMs: 5 * MINUTE,
        absoluteTimeoutMs: 60 * MINUTE,
      })
      await createOperator(short.runtime.store, short.runtime.deps, short.runtime.events, {
        email: EMAIL,
        password: PASSWORD,
      })
      const client = new BrowserClient()
      const page = await client.get(`${short.serviceUrl}/console/sign-in`)
      const signedIn = await client.post(`${short.serviceUrl}/console/sign-in`, {
        csrf: csrfOf(page),
        email: EMAIL,
        password: PASSWORD,
      })
      expect(signedIn.status).toBe(303)
      short.clock.advance(4 * MINUTE)
      expect((await client.get(`${short.serviceUrl}/`)).status).toBe(200)
      short.clock.advance(6 * MINUTE)
      expect((await client.get(`${short.serviceUrl}/`)).status).toBe(303)
    } finally {
      await short.close()
    }
  })
})
