/**
 * The operator console's pages (issue 7 rule 6): connections with filters and keyset paging, one
 * connection with its actions and its events' webhook deliveries, and the page that shows a new connect link
 * once. Every action is a POST form carrying the session's CSRF token; there are no scripts (strict CSP), so
 * a link to copy is a read-only input. No token of any kind is ever rendered except a fresh connect link.
 */
import { html } from 'hono/html'
import type { ConnectionRecord, DeliveryRecord, EventRecord } from '../../store/store.ts'
import { CONNECTION_STATUSES } from '../../store/store.ts'
import { servicePath } from '../public-url.ts'
import { type ConsoleHeader, formatTime, type Html, layout, type PageLocation } from './layout.ts'

export interface DashboardOptions extends PageLocation {
  readonly devMode: boolean
  /** In dev, links to the simulator's Appstore page and Manage Your Apps page. */
  readonly simulatorLinks?: { appstore: string; manageApps: string } | undefined
  /** The signed-in operator and the CSRF token every form carries. */
  readonly console: ConsoleHeader
}

interface ConnectionListView {
  readonly connections: readonly ConnectionRecord[]
  readonly status: string | undefined
  readonly tenant: string | undefined
  /** Id to pass as `after` for the next page, when there is one. */
  readonly nextAfter: string | undefined
  /** True when this is not the first page. */
  readonly paged: boolean
}

const REGION_LABELS = { na: 'North America', eu: 'Europe', fe: 'Far East' } as const

function csrfField(options: DashboardOptions): Html {
  return html`<input type="hidden" name="csrf" value="${options.console.csrfToken}">`
}

function regionAndTypeFields(): Html {
  return html`<label>Region
<select name="region">
<option value="na">North America (NA)</option>
<option value="eu">Europe (EU)</option>
<option value="fe">Far East (FE)</option>
</select></label>
<label>Account type
<select name="type">
<option value="seller">Seller</option>
<option value="vendor">Vendor</option>
</select></label>`
}

function pageQuery(view: ConnectionListView, after: string, options: DashboardOptions): string {
  const query = new URLSearchParams()
  if (view.status) query.set('status', view.status)
  if (view.tenant) query.set('tenant', view.tenant)
  query.set('after', after)
  return servicePath(options, `/?${query}`)
}

export function dashboardPage(view: ConnectionListView, options: DashboardOptions): Html {
  const filtered = view.status !== undefined || view.tenant !== undefined
  return layout(
    'Connections',
    html`<section>
<h1>Connections</h1>
<form class="inline" method="post" action="${servicePath(options, '/console/connect')}" id="connect-form">
${csrfField(options)}
${regionAndTypeFields()}
<label>Tenant (optional)
<input type="text" name="tenant" maxlength="200" autocomplete="off"></label>
<button type="submit">Connect a seller account</button>
</form>
${
  options.simulatorLinks
    ? html`<p class="muted">Simulated Amazon: start from the <a href="${options.simulatorLinks.appstore}">Appstore</a>
or re-authorize from <a href="${options.simulatorLinks.manageApps}">Manage Your Apps</a>.</p>`
    : ''
}
<details>
<summary>Make a connect link for a tenant</summary>
<form class="inline" method="post" action="${servicePath(options, '/console/connect-links')}" id="connect-link-form">
${csrfField(options)}
<label>Tenant
<input type="text" name="tenant" maxlength="200" required autocomplete="off"></label>
${regionAndTypeFields()}
<button type="submit">Make a connect link</button>
</form>
</details>
</section>
<section>
<form class="inline" method="get" action="${servicePath(options, '/')}" id="filter-form">
<label>Status
<select name="status">
<option value="">Any</option>
${CONNECTION_STATUSES.map((s) => html`<option value="${s}"${view.status === s ? html` selected` : ''}>${s}</option>`)}
</select></label>
<label>Tenant
<input type="text" name="tenant" maxlength="200" value="${view.tenant ?? ''}"></label>
<button type="submit" class="secondary">Filter</button>
</form>
${
  view.connections.length === 0
    ? html`<p>${filtered || view.paged ? 'No connections match.' : 'No connections yet.'}</p>`
    : connectionsTable(view.connections, options)
}
<nav>
${view.paged || filtered ? html`<a href="${servicePath(options, '/')}">First page, no filters</a>` : ''}
${view.nextAfter ? html` <a href="${pageQuery(view, view.nextAfter, options)}" id="next-page">Next page</a>` : ''}
</nav>
</section>`,
    options,
  )
}

function connectionsTable(connections: readonly ConnectionRecord[], options: DashboardOptions): Html {
  return html`<table id="connections">
<thead><tr><th>Selling partner</th><th>Region</th><th>Type</th><th>Status</th><th>Authorized</th><th>Re-authorize by</th><th>Tenant</th></tr></thead>
<tbody>
${connections.map(
  (c) => html`<tr data-connection-id="${c.id}">
<td><a href="${servicePath(options, `/connections/${c.id}`)}">${c.sellingPartnerId}</a></td>
<td>${c.region.toUpperCase()}</td>
<td>${c.accountType}</td>
<td class="status-${c.status}">${c.status}${
    c.status === 'needs_reauthorization' && c.tenantId !== null
      ? html` <a href="${servicePath(options, `/connections/${c.id}#actions`)}">Reconnect</a>`
      : ''
  }</td>
<td>${formatTime(c.authorizedAt)}</td>
<td>${formatTime(c.reauthorizeBy)}</td>
<td>${c.tenantId ?? '—'}</td>
</tr>`,
)}
</tbody>
</table>`
}

/** Fixed notices a redirect after an action may ask for (`?done=…`); anything else shows nothing. */
const NOTICES: Readonly<Record<string, string>> = {
  disconnected: 'Disconnected. Its tokens are deleted.',
  refreshed: 'Refreshed: a new access token was issued.',
  refresh_failed: 'The refresh failed; see the last refresh below.',
}

interface EventWithDeliveries {
  readonly event: EventRecord
  readonly deliveries: readonly DeliveryRecord[]
}

export function connectionPage(
  connection: ConnectionRecord,
  events: readonly EventWithDeliveries[],
  options: DashboardOptions & { justConnected: boolean; done: string | undefined },
): Html {
  const c = connection
  const notice = options.done === undefined ? undefined : NOTICES[options.done]
  return layout(
    c.sellingPartnerId,
    html`<article>
${options.justConnected ? html`<p class="notice" id="connected-notice">Connected. The account is authorized.</p>` : ''}
${notice ? html`<p class="notice" id="action-notice">${notice}</p>` : ''}
<h1>${c.sellingPartnerId}</h1>
<dl>
<dt>Connection id</dt><dd><code>${c.id}</code></dd>
<dt>Region</dt><dd>${REGION_LABELS[c.region]} (${c.region.toUpperCase()})</dd>
<dt>Account type</dt><dd>${c.accountType}</dd>
<dt>Status</dt><dd class="status-${c.status}" id="status">${c.status}${c.statusReason ? html` <span class="muted">(${c.statusReason})</span>` : ''}</dd>
<dt>Tenant</dt><dd>${c.tenantId ?? '—'}</dd>
<dt>Authorized</dt><dd>${formatTime(c.authorizedAt)}</dd>
<dt>Re-authorize by</dt><dd>${formatTime(c.reauthorizeBy)}</dd>
<dt>Access token expires</dt><dd id="access-token-expires">${formatTime(c.accessTokenExpiresAt)}</dd>
<dt>Last refresh</dt><dd id="last-refresh">${formatTime(c.lastRefreshAt)}${c.lastRefreshError ? html` <span class="muted">failed: ${c.lastRefreshError}</span>` : ''}</dd>
</dl>
<p class="muted">Get a token: <code>sp-connect token ${c.id}</code></p>
${c.status === 'disconnected' ? '' : actions(c, options)}
</article>
<section>
<h2>Events</h2>
${
  events.length === 0
    ? html`<p>No events.</p>`
    : html`<table id="events"><thead><tr><th>Time</th><th>Event</th><th>By</th><th>Webhook deliveries</th></tr></thead><tbody>
${events.map(
  ({
    event,
    deliveries,
  }) => html`<tr data-event-id="${event.id}"><td>${formatTime(event.createdAt)}</td><td>${event.type}</td>
<td>${typeof event.data['by'] === 'string' ? event.data['by'] : ''}</td>
<td>${deliveries.length === 0 ? '—' : html`<ul>${deliveries.map((d) => deliveryItem(d))}</ul>`}</td></tr>`,
)}
</tbody></table>`
}
</section>`,
    options,
  )
}

function deliveryItem(d: DeliveryRecord): Html {
  return html`<li class="delivery-${d.status}">${d.status} → ${d.url}
<span class="muted">(${d.attempts} attempt${d.attempts === 1 ? '' : 's'}${d.lastStatusCode === null ? '' : html`, HTTP ${d.lastStatusCode}`}${d.deliveredAt === null ? '' : html`, ${formatTime(d.deliveredAt)}`}${d.lastError ? html`, ${d.lastError}` : ''})</span></li>`
}

function actions(c: ConnectionRecord, options: DashboardOptions): Html {
  return html`<section id="actions">
<h2>Actions</h2>
<div class="grid">
<form method="post" action="${servicePath(options, `/console/connections/${c.id}/refresh`)}">
${csrfField(options)}
<button type="submit" class="secondary">Refresh now</button>
</form>
${
  c.tenantId === null
    ? html`<p class="muted">No tenant: reconnect it with Connect a seller account.</p>`
    : html`<form method="post" action="${servicePath(options, `/console/connections/${c.id}/reconnect-link`)}">
${csrfField(options)}
<button type="submit" class="secondary">Make a reconnect link</button>
</form>`
}
<form method="post" action="${servicePath(options, `/console/connections/${c.id}/disconnect`)}">
${csrfField(options)}
<button type="submit" class="contrast">Disconnect</button>
</form>
</div>
</section>`
}

/** Shows a freshly made connect link once: it is not stored anywhere it could be shown again. */
export function connectLinkPage(
  input: {
    link: string
    expiresAt: number
    tenantId: string
    purpose: 'reconnect' | 'connect'
    connectionId?: string
  },
  options: DashboardOptions,
): Html {
  return layout(
    input.purpose === 'reconnect' ? 'Reconnect link' : 'Connect link',
    html`<article>
<h1>${input.purpose === 'reconnect' ? 'Reconnect link' : 'Connect link'}</h1>
<p>Send this link to the seller of tenant <strong>${input.tenantId}</strong>. It works until
${formatTime(input.expiresAt)} and is shown only now: copy it before you leave this page.</p>
<label>Link
<input type="text" readonly id="connect-link" value="${input.link}"></label>
<p>${input.connectionId ? html`<a href="${servicePath(options, `/connections/${input.connectionId}`)}">Back to the connection</a>` : html`<a href="${servicePath(options, '/')}">Back to connections</a>`}</p>
</article>`,
    options,
  )
}
