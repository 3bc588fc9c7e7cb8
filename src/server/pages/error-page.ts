import { html } from 'hono/html'
import type { SpConnectError } from '../../core/errors.ts'
import { type Html, layout } from './layout.ts'

/** A fixed text per error code; nothing from the request is ever shown. */
export function errorPage(error: SpConnectError, options: { devMode: boolean }): Html {
  return layout(
    'Could not connect',
    html`<article>
<h1>Could not connect the account</h1>
<p>${error.message}</p>
<p class="muted">Error code: <code>${error.code}</code></p>
<p><a href="/">Back to the start</a></p>
</article>`,
    options,
  )
}
