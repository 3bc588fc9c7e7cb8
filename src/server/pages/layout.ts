import { html } from 'hono/html'
import type { HtmlEscapedString } from 'hono/utils/html'
import { STYLESHEET_PATH } from '../assets.ts'

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>

export function layout(title: string, body: Html, options: { devMode: boolean }): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · sp-connect</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<header><nav><ul><li><strong><a href="/">sp-connect</a></strong></li></ul>
<ul>${options.devMode ? html`<li><mark>development: simulated Amazon</mark></li>` : ''}</ul></nav></header>
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
