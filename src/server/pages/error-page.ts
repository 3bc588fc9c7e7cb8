import { html } from 'hono/html'
import type { SpConnectError } from '../../domain/errors.ts'
import { servicePath } from '../public-url.ts'
import { type Html, layout, type PageLocation } from './layout.ts'

/** A fixed text per error code; nothing from the request is ever shown. */
export function errorPage(error: SpConnectError, options: PageLocation & { devMode: boolean }): Html {
  return layout(
    'Could not connect',
    html`<article>
<h1>Could not connect the account</h1>
<p>${error.message}</p>
<p class="muted">Error code: <code>${error.code}</code></p>
<p><a href="${servicePath(options, '/')}">Back to the start</a></p>
</article>`,
    options,
  )
}
