/**
 * The pages a seller sees: the Login-URI confirmation, the landing after a connection, cancellations and errors,
 * and dev's stand-in for the app's sign-in page. They belong to the app, not to sp-connect's operators: they
 * show the app's name, logo and colour (`SP_CONNECT_BRAND_*`), never link to the operator console, and "start
 * again" leads somewhere a seller can use (the flow's return URL or `SP_CONNECT_SELLER_START_URL`), or nowhere.
 * Every interpolation is escaped by hono/html; nothing from the request is shown except values sp-connect
 * itself validated (selling partner ids are letters and digits).
 */
import { html } from 'hono/html'
import type { BrandConfig } from '../../config.ts'
import type { LoginRequestView } from '../../core/authorization/login-requests.ts'
import type { SpConnectError } from '../../domain/errors.ts'
import type { Region } from '../../domain/regions.ts'
import { STYLESHEET_PATH } from '../assets.ts'
import { servicePath } from '../public-url.ts'
import type { Html, PageLocation } from './layout.ts'

/** Served by authorize.ts from the configured colour. */
export const BRAND_STYLESHEET_PATH = '/assets/brand.css'

export interface SellerPageOptions extends PageLocation {
  readonly brand: BrandConfig
  readonly devMode: boolean
}

const REGION_NAMES: Readonly<Record<Region, string>> = {
  na: 'North America',
  eu: 'Europe',
  fe: 'Far East',
}

function sellerLayout(title: string, body: Html, options: SellerPageOptions): Html {
  const { brand } = options
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · ${brand.name}</title>
<link rel="stylesheet" href="${servicePath(options, STYLESHEET_PATH)}">
${brand.color ? html`<link rel="stylesheet" href="${servicePath(options, BRAND_STYLESHEET_PATH)}">` : ''}
</head>
<body>
<header class="brand">${brand.logoUrl ? html`<img src="${brand.logoUrl}" alt="" height="40">` : ''}<strong>${brand.name}</strong>${
    options.devMode ? html` <mark>development: simulated Amazon</mark>` : ''
  }</header>
<main>${body}</main>
</body>
</html>`
}

/** The CSS that applies the brand colour to Pico's primary colour variables. */
export function brandStylesheet(brand: BrandConfig): string {
  if (!brand.color) return ''
  // The colour was validated as #rrggbb in config.ts, so it is safe inside CSS.
  return `:root{--pico-primary:${brand.color};--pico-primary-background:${brand.color};--pico-primary-border:${brand.color};--pico-primary-hover:${brand.color};--pico-primary-hover-background:${brand.color};--pico-primary-focus:${brand.color}40}\n`
}

function shortId(sellingPartnerId: string): string {
  return sellingPartnerId.length > 8 ? `${sellingPartnerId.slice(0, 6)}…` : sellingPartnerId
}

/** "Connect Amazon seller account A… (North America) to <tenant>?" with Confirm and Cancel (a CSRF-protected POST). */
export function confirmationPage(
  request: LoginRequestView,
  input: { action: string; csrfToken: string },
  options: SellerPageOptions,
): Html {
  const tenant = request.tenantName ?? request.tenantId ?? ''
  const verb = request.reauthorization ? 'Re-authorize' : 'Connect'
  return sellerLayout(
    `${verb} your Amazon account`,
    html`<article>
<h1>${verb} Amazon seller account ${shortId(request.sellingPartnerId)} (${REGION_NAMES[request.region]}) to ${tenant}?</h1>
<p>${options.brand.name} will be able to use this Amazon seller account
(<code>${request.sellingPartnerId}</code>) for the account <strong>${tenant}</strong>.
If you did not start this from Amazon, or ${tenant} is not your account, choose Cancel.</p>
<form method="post" action="${input.action}">
<input type="hidden" name="csrf" value="${input.csrfToken}">
<div role="group">
<button type="submit" name="action" value="confirm">Confirm</button>
<button type="submit" name="action" value="cancel" class="secondary">Cancel</button>
</div>
</form>
</article>`,
    options,
  )
}

/** A seller's landing after a connection when the app named no return URL. */
export function connectedPage(options: SellerPageOptions): Html {
  return sellerLayout(
    'Connected',
    html`<article><h1>Your Amazon account is connected</h1>
<p>${options.brand.name} can now use it. You can close this window.</p></article>`,
    options,
  )
}

export function cancelledPage(startAgainUrl: string | null, options: SellerPageOptions): Html {
  return sellerLayout(
    'Not connected',
    html`<article><h1>Nothing was connected</h1>
<p>You cancelled, so ${options.brand.name} was not given access to your Amazon account.</p>
${startAgainUrl ? html`<p><a href="${startAgainUrl}">Start again</a></p>` : ''}</article>`,
    options,
  )
}

/** A fixed text per error code; nothing from the request is ever shown. */
export function sellerErrorPage(
  error: SpConnectError,
  startAgainUrl: string | null,
  options: SellerPageOptions,
): Html {
  return sellerLayout(
    'Could not connect',
    html`<article>
<h1>Could not connect the account</h1>
<p>${error.message}</p>
<p class="muted">Error code: <code>${error.code}</code></p>
${startAgainUrl ? html`<p><a href="${startAgainUrl}">Start again</a></p>` : ''}
</article>`,
    options,
  )
}

/**
 * dev's stand-in for the app's own sign-in page (`SP_CONNECT_APP_SIGNIN_URL`): in production the app signs its
 * user in and calls `POST /v1/login-requests/:id/approve` from its backend; here a form picks the tenant.
 */
export function devSignInPage(
  request: LoginRequestView,
  input: { action: string; login: string; tenants: readonly string[] },
  options: SellerPageOptions,
): Html {
  return sellerLayout(
    'Sign in',
    html`<article>
<h1>Sign in to ${options.brand.name}</h1>
<p class="muted">Development stand-in for your app's sign-in page. Amazon asked to link seller account
<code>${request.sellingPartnerId}</code> (${REGION_NAMES[request.region]}); your app signs its user in and approves
the request for that user's tenant with <code>POST /v1/login-requests/:id/approve</code>.</p>
<form method="post" action="${input.action}">
<input type="hidden" name="login" value="${input.login}">
<label>Tenant (your app's user or organisation id)
<input name="tenant_id" list="known-tenants" required maxlength="256" value="${input.tenants[0] ?? 'tenant-1'}">
<datalist id="known-tenants">${input.tenants.map((t) => html`<option value="${t}"></option>`)}</datalist>
</label>
<label>Tenant name (shown to the seller)
<input name="tenant_name" maxlength="120" placeholder="Acme Corp">
</label>
<div role="group">
<button type="submit" name="action" value="approve">Sign in and continue</button>
<button type="submit" name="action" value="reject" class="secondary">Decline</button>
</div>
</form>
</article>`,
    options,
  )
}
