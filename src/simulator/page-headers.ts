/**
 * Response headers for the simulated Amazon pages and their redirects: a strict CSP with no third-party
 * sources, no referrer (the docs advise it, spapi-facts.md §1.3), and no caching.
 */
/**
 * A CSP source for the origin of a URL a form may end up at. Browsers (Chromium) apply `form-action` to
 * the redirects that follow a form submission, so the consent form must also allow the redirect target.
 * Non-web schemes become scheme sources (`myapp:`).
 */
function cspSource(uri: string): string | undefined {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return undefined
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin
  return /^[a-z][a-z0-9+.-]*:$/i.test(url.protocol) ? url.protocol : undefined
}

/**
 * Headers for an HTML page. `formTargets`: where forms on the page may submit or be redirected to,
 * besides the simulator itself; `null` for pages without forms.
 */
export function pageHeaders(formTargets: readonly string[] | null): Record<string, string> {
  const sources = new Set<string>(["'self'"])
  for (const target of formTargets ?? []) {
    const source = cspSource(target)
    if (source) sources.add(source)
  }
  const formAction = formTargets === null ? "'none'" : [...sources].join(' ')
  return {
    'Content-Security-Policy': [
      "default-src 'none'",
      "style-src 'self'",
      "img-src 'self'",
      `form-action ${formAction}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
  }
}
