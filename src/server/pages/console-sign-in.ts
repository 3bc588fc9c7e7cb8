/** The operator console's sign-in page: email and password, with the pre-session CSRF token. */
import { html } from 'hono/html'
import { servicePath } from '../public-url.ts'
import { type Html, layout, type PageLocation } from './layout.ts'

export function signInPage(
  input: PageLocation & { csrfToken: string; error: string | undefined; devMode: boolean },
): Html {
  return layout(
    'Sign in',
    html`<article>
<h1>Sign in to the operator console</h1>
${input.error ? html`<p class="notice" id="sign-in-error">${input.error}</p>` : ''}
<form method="post" action="${servicePath(input, '/console/sign-in')}" id="sign-in-form">
<input type="hidden" name="csrf" value="${input.csrfToken}">
<label>Email
<input type="email" name="email" required autocomplete="username" maxlength="256"></label>
<label>Password
<input type="password" name="password" required autocomplete="current-password" maxlength="1024"></label>
<button type="submit">Sign in</button>
</form>
<p class="muted">Operator accounts are created with <code>sp-connect operators create --email …</code>.</p>
</article>`,
    { devMode: input.devMode, basePath: input.basePath },
  )
}
