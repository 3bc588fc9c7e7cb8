import { html } from 'hono/html'
import type { HtmlEscapedString } from 'hono/utils/html'
import { STYLESHEET_PATH } from '../assets.ts'
import { servicePath } from '../public-url.ts'

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>

/** Every page knows the base path its links and forms live under ('' or absent at the root). */
export interface PageLocation {
  readonly basePath?: string | undefined
}

/** The signed-in operator, when a console page is rendered: the header offers Sign out. */
export interface ConsoleHeader {
  readonly label: string
  readonly csrfToken: string
}

export function layout(
  title: string,
  body: Html,
  options: PageLocation & { devMode: boolean; console?: ConsoleHeader | undefined },
): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · sp-connect</title>
<link rel="stylesheet" href="${servicePath(options, STYLESHEET_PATH)}">
</head>
<body>
<header><nav><ul><li><strong><a href="${servicePath(options, '/')}">sp-connect</a></strong></li></ul>
<ul>${options.devMode ? html`<li><mark>development: simulated Amazon</mark></li>` : ''}
${
  options.console
    ? html`<li class="muted">${options.console.label}</li>
<li><form class="inline" method="post" action="${servicePath(options, '/console/sign-out')}"><input type="hidden" name="csrf" value="${options.console.csrfToken}"><button type="submit" class="secondary">Sign out</button></form></li>`
    : ''
}</ul></nav></header>
<main>${body}</main>
</body>
</html>`
}

export function formatTime(ms: number | null): string {
  return ms === null
    ? '—'
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, ' UTC')
}
