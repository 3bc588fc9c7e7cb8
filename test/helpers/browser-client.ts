/**
 * A minimal browser for integration tests: follows redirects by hand (so tests can stop at any hop), keeps
 * cookies per host:port like a browser does, and submits the simulator's HTML forms.
 */
export interface Hop {
  readonly url: string
  readonly status: number
  readonly location: string | null
  readonly body: string
  readonly headers: Headers
}

export class BrowserClient {
  readonly #cookies = new Map<string, Map<string, string>>()

  async get(url: string, init: { headers?: Record<string, string> } = {}): Promise<Hop> {
    return this.#send(url, { method: 'GET', headers: init.headers ?? {} })
  }

  async post(url: string, form: Record<string, string>): Promise<Hop> {
    return this.#send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    })
  }

  /** Follows redirects from `hop` until a non-redirect, or until `stopAt` matches the next URL. */
  async follow(hop: Hop, stopAt?: (url: URL) => boolean): Promise<Hop> {
    let current = hop
    for (let i = 0; i < 20; i++) {
      if (current.location === null) return current
      const next = new URL(current.location, current.url)
      if (stopAt?.(next)) return current
      current = await this.get(next.href)
    }
    throw new Error('too many redirects')
  }

  /** Fills and submits the first POST form on the page, pressing the button `action=value`. */
  async submitForm(
    page: Hop,
    button: { name: string; value: string },
    overrides: Record<string, string> = {},
  ): Promise<Hop> {
    const form = page.body.match(/<form[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i)
    if (!form?.[1]) throw new Error(`no POST form on ${page.url}`)
    const action = form[0].match(/action="([^"]*)"/i)?.[1] ?? page.url
    const fields: Record<string, string> = {}
    for (const input of form[1].matchAll(/<input\b[^>]*>/gi)) {
      const name = input[0].match(/name="([^"]*)"/)?.[1]
      const value = input[0].match(/value="([^"]*)"/)?.[1] ?? ''
      if (name) fields[decodeEntities(name)] = decodeEntities(value)
    }
    return this.post(new URL(decodeEntities(action), page.url).href, {
      ...fields,
      ...overrides,
      [button.name]: button.value,
    })
  }

  /** Follows the first link whose text contains `text`. */
  async clickLink(page: Hop, text: string): Promise<Hop> {
    for (const link of page.body.matchAll(/<a\b[^>]*href="([^"]*)"[^>]*>([\s\S]*?)<\/a>/gi)) {
      if ((link[2] ?? '').includes(text))
        return this.get(new URL(decodeEntities(link[1] ?? ''), page.url).href)
    }
    throw new Error(`no link "${text}" on ${page.url}`)
  }

  cookie(hostPort: string, name: string): string | undefined {
    return this.#cookies.get(hostPort)?.get(name)
  }

  setCookie(hostPort: string, name: string, value: string): void {
    const jar = this.#cookies.get(hostPort) ?? new Map<string, string>()
    jar.set(name, value)
    this.#cookies.set(hostPort, jar)
  }

  clearCookies(): void {
    this.#cookies.clear()
  }

  async #send(
    url: string,
    init: { method: string; headers: Record<string, string>; body?: string },
  ): Promise<Hop> {
    const target = new URL(url)
    const jar = this.#cookies.get(target.host)
    const headers = new Headers(init.headers)
    if (jar && jar.size > 0) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '))
    const response = await fetch(target, {
      method: init.method,
      headers,
      body: init.body ?? null,
      redirect: 'manual',
    })
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair?.indexOf('=') ?? -1
      if (pair && eq > 0) {
        const store = this.#cookies.get(target.host) ?? new Map<string, string>()
        const maxAge = line.match(/max-age=(-?\d+)/i)?.[1]
        if (maxAge !== undefined && Number(maxAge) <= 0) store.delete(pair.slice(0, eq).trim())
        else store.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
        this.#cookies.set(target.host, store)
      }
    }
    return {
      url: target.href,
      status: response.status,
      location: response.headers.get('location'),
      body: await response.text(),
      headers: response.headers,
    }
  }
}

function decodeEntities(value: string): string {
  return value
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
}
