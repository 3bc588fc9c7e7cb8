import { html } from 'hono/html'
import type { ConnectionRecord, EventRecord } from '../../store/store.ts'
import { formatTime, type Html, layout } from './layout.ts'

export interface DashboardOptions {
  readonly devMode: boolean
  /** In dev, links to the simulator's Appstore page and Manage Your Apps page. */
  readonly simulatorLinks?: { appstore: string; manageApps: string } | undefined
}

const REGION_LABELS = { na: 'North America', eu: 'Europe', fe: 'Far East' } as const

export function dashboardPage(connections: readonly ConnectionRecord[], options: DashboardOptions): Html {
  return layout(
    'Connections',
    html`<section>
<h1>Connections</h1>
<form class="inline" method="get" action="/connect">
<label>Region
<select name="region">
<option value="na">North America (NA)</option>
<option value="eu">Europe (EU)</option>
<option value="fe">Far East (FE)</option>
</select></label>
<label>Account type
<select name="type">
<option value="seller">Seller</option>
<option value="vendor">Vendor</option>
</select></label>
<button type="submit">Connect a seller account</button>
</form>
${
  options.simulatorLinks
    ? html`<p class="muted">Simulated Amazon: start from the <a href="${options.simulatorLinks.appstore}">Appstore</a>
or re-authorize from <a href="${options.simulatorLinks.manageApps}">Manage Your Apps</a>.</p>`
    : ''
}
</section>
<section>
${connections.length === 0 ? html`<p>No connections yet.</p>` : connectionsTable(connections)}
</section>`,
    options,
  )
}

function connectionsTable(connections: readonly ConnectionRecord[]): Html {
  return html`<table id="connections">
<thead><tr><th>Selling partner</th><th>Region</th><th>Type</th><th>Status</th><th>Authorized</th><th>Re-authorize by</th></tr></thead>
<tbody>
${connections.map(
  (c) => html`<tr data-connection-id="${c.id}">
<td><a href="/connections/${c.id}">${c.sellingPartnerId}</a></td>
<td>${c.region.toUpperCase()}</td>
<td>${c.accountType}</td>
<td class="status-${c.status}">${c.status}</td>
<td>${formatTime(c.authorizedAt)}</td>
<td>${formatTime(c.reauthorizeBy)}</td>
</tr>`,
)}
</tbody>
</table>`
}

export function connectionPage(
  connection: ConnectionRecord,
  events: readonly EventRecord[],
  options: DashboardOptions & { justConnected: boolean },
): Html {
  const c = connection
  return layout(
    c.sellingPartnerId,
    html`<article>
${options.justConnected ? html`<p class="notice" id="connected-notice">Connected. The account is authorized.</p>` : ''}
<h1>${c.sellingPartnerId}</h1>
<dl>
<dt>Connection id</dt><dd><code>${c.id}</code></dd>
<dt>Region</dt><dd>${REGION_LABELS[c.region]} (${c.region.toUpperCase()})</dd>
<dt>Account type</dt><dd>${c.accountType}</dd>
<dt>Status</dt><dd class="status-${c.status}">${c.status}${c.statusReason ? html` <span class="muted">(${c.statusReason})</span>` : ''}</dd>
<dt>Tenant</dt><dd>${c.tenantId ?? '—'}</dd>
<dt>Authorized</dt><dd>${formatTime(c.authorizedAt)}</dd>
<dt>Re-authorize by</dt><dd>${formatTime(c.reauthorizeBy)}</dd>
<dt>Access token expires</dt><dd>${formatTime(c.accessTokenExpiresAt)}</dd>
<dt>Last refresh</dt><dd>${formatTime(c.lastRefreshAt)}${c.lastRefreshError ? html` <span class="muted">failed: ${c.lastRefreshError}</span>` : ''}</dd>
</dl>
<p class="muted">Get a token: <code>sp-connect token ${c.id}</code></p>
</article>
<section>
<h2>Events</h2>
${
  events.length === 0
    ? html`<p>No events.</p>`
    : html`<table><thead><tr><th>Time</th><th>Event</th></tr></thead><tbody>
${events.map((e) => html`<tr><td>${formatTime(e.createdAt)}</td><td>${e.type}</td></tr>`)}
</tbody></table>`
}
</section>`,
    options,
  )
}
