/**
 * The simulated Seller/Vendor Central pages. Every interpolation goes through `hono/html`'s escaping
 * template; nothing here prints a secret, token or code.
 */
import { html } from 'hono/html'
import type { HtmlEscapedString } from 'hono/utils/html'
import { CSRF_FIELD } from './csrf.ts'
import { STYLESHEET_PATH } from './routes.ts'

type Page = HtmlEscapedString | Promise<HtmlEscapedString>

interface LayoutProps {
  /** Simulator base URL; undefined when unknown (then the page goes without the stylesheet). */
  readonly base: string | undefined
  readonly host: string | undefined
  readonly title: string
  readonly body: Page
}

function layout({ base, host, title, body }: LayoutProps): Page {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
${base !== undefined ? html`<link rel="stylesheet" href="${base}${STYLESHEET_PATH}">` : ''}
</head>
<body>
<div class="sim-banner"><strong>Amazon simulator</strong> (sp-connect) — not a real Amazon page${
    host ? html`<span class="sim-host">${host}</span>` : ''
  }</div>
<main>
${body}
</main>
</body>
</html>`
}

interface ErrorPageProps {
  readonly base: string
  readonly host: string | undefined
  readonly appId: string | undefined
  readonly message: string
  readonly errorCode: string | undefined
}

/** Amazon shows consent failures on its own page: "Something went wrong … App ID … Error Code". */
export function errorPage(p: ErrorPageProps): Page {
  const body = html`<div class="error" data-error-code="${p.errorCode ?? ''}">
<h1>Something went wrong</h1>
<p>${p.message}</p>
${p.appId !== undefined ? html`<p>App ID: <span class="code">${p.appId}</span></p>` : ''}
${p.errorCode !== undefined ? html`<p>Error Code: <span class="code">${p.errorCode}</span></p>` : ''}
</div>`
  return layout({ base: p.base, host: p.host, title: 'Something went wrong', body })
}

export function notFoundPage(base: string | undefined): Page {
  const body = html`<h1>Page not found</h1><p>The simulator serves no page at this address.</p>`
  return layout({ base, host: undefined, title: 'Page not found', body })
}

interface ConsentPageProps {
  readonly base: string
  readonly host: string
  readonly appName: string
  /** Where the form posts (the consent URL without its query). */
  readonly action: string
  /** Original request parameters, carried in hidden fields. */
  readonly hidden: ReadonlyArray<readonly [string, string]>
  readonly sellingPartnerId: string
  readonly reauthorize: boolean
  readonly notice: string | undefined
}

/** Simulated sign-in plus consent: the seller id field, the data-access text, Confirm and Cancel. */
export function consentPage(p: ConsentPageProps): Page {
  const title = p.reauthorize ? `Re-authorize ${p.appName}` : `Authorize ${p.appName}`
  const body = html`<h1>${title}</h1>
${p.notice ? html`<p class="notice">${p.notice}</p>` : ''}
<form method="post" action="${p.action}">
${p.hidden.map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
<h2>Sign in</h2>
<p class="muted">Simulated sign-in: enter the selling partner id to authorize as.</p>
<label for="selling_partner_id">Selling partner id</label>
<input type="text" id="selling_partner_id" name="selling_partner_id" value="${p.sellingPartnerId}"
  autocomplete="off" spellcheck="false" required>
<h2>Data access</h2>
<p><strong>${p.appName}</strong> is requesting access to your selling account in this region through the
Selling Partner API, for the roles the developer registered. It can access this data until you remove the
app in Manage Your Apps or the authorization expires after 365 days.</p>
<p class="muted">This app is built by a third-party developer, not by Amazon.</p>
<div class="buttons">
<button type="submit" name="action" value="confirm">Confirm</button>
<button type="submit" name="action" value="cancel" class="secondary" formnovalidate>Cancel</button>
</div>
</form>`
  return layout({ base: p.base, host: p.host, title, body })
}

interface AppstorePageProps {
  readonly base: string
  readonly host: string
  readonly appName: string
  readonly appId: string
  readonly authorizeHref: string
}

export function appstorePage(p: AppstorePageProps): Page {
  const body = html`<h1>${p.appName}</h1>
<p class="muted">Selling Partner Appstore · App ID: ${p.appId}</p>
<p>Connect ${p.appName} to your selling account.</p>
<div class="buttons"><a class="button" href="${p.authorizeHref}">Authorize now</a></div>`
  return layout({ base: p.base, host: p.host, title: `${p.appName} - Selling Partner Appstore`, body })
}

interface SignInPageProps {
  readonly base: string
  readonly host: string
  readonly action: string
  readonly sellingPartnerId: string
}

export function manageSignInPage(p: SignInPageProps): Page {
  const body = html`<h1>Manage Your Apps</h1>
<form method="get" action="${p.action}">
<p class="muted">Simulated sign-in: enter the selling partner id whose apps to manage.</p>
<label for="selling_partner_id">Selling partner id</label>
<input type="text" id="selling_partner_id" name="selling_partner_id" value="${p.sellingPartnerId}"
  autocomplete="off" spellcheck="false" required>
<div class="buttons"><button type="submit">Sign in</button></div>
</form>`
  return layout({ base: p.base, host: p.host, title: 'Manage Your Apps', body })
}

export interface ManagedAppRow {
  readonly appId: string
  readonly appName: string
  readonly authorizedOn: string
  readonly expiresOn: string
  readonly status: 'Active' | 'Expired' | 'Removed'
  readonly reauthorizeHref: string
}

interface ManageAppsPageProps {
  readonly base: string
  readonly host: string
  readonly sellingPartnerId: string
  readonly rows: readonly ManagedAppRow[]
  readonly removeAction: string
  readonly csrf: string
}

export function manageAppsPage(p: ManageAppsPageProps): Page {
  const rows = p.rows.map(
    (row) => html`<tr>
<td>${row.appName}<br><span class="muted">${row.appId}</span></td>
<td>${row.authorizedOn}</td><td>${row.expiresOn}</td><td>${row.status}</td>
<td><a class="button" href="${row.reauthorizeHref}">Re-Authorize</a>
${
  row.status === 'Active'
    ? html`<form method="post" action="${p.removeAction}">
<input type="hidden" name="${CSRF_FIELD}" value="${p.csrf}">
<input type="hidden" name="selling_partner_id" value="${p.sellingPartnerId}">
<input type="hidden" name="app_id" value="${row.appId}">
<button type="submit" class="secondary">Remove app</button></form>`
    : ''
}</td></tr>`,
  )
  const body = html`<h1>Manage Your Apps</h1>
<p class="muted">Signed in as ${p.sellingPartnerId}</p>
${
  p.rows.length === 0
    ? html`<p>No apps are authorized for this account in this region.</p>`
    : html`<table><thead><tr><th>App</th><th>Authorized</th><th>Expires</th><th>Status</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>`
}`
  return layout({ base: p.base, host: p.host, title: 'Manage Your Apps', body })
}
