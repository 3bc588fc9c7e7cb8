/** The dashboard's only stylesheet: Pico's classless CSS plus a few lines of ours, served from this origin. */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Env, Hono } from 'hono'

const OWN_CSS = `
main { max-width: 72rem; }
.status-active { color: #2e7d32; }
.status-needs_reauthorization { color: #b26a00; }
.status-disconnected { color: #8a8a8a; }
.notice { padding: .75rem 1rem; border-left: 4px solid #b26a00; background: rgba(178,106,0,.08); }
.muted { color: #6b7280; font-size: .9em; }
form.inline { display: flex; gap: 1rem; align-items: end; flex-wrap: wrap; }
form.inline label { flex: 1 1 10rem; }
form.inline button { flex: 0 0 auto; width: auto; }
code { word-break: break-all; }
header.brand { display: flex; gap: .75rem; align-items: center; }
/* Pico's classless build has no secondary buttons; a seller must tell Cancel from Confirm at a glance. */
button.secondary { background: transparent; color: var(--pico-primary); border-color: var(--pico-primary); }
`

let css: string | undefined

function stylesheet(): string {
  if (css === undefined) {
    const require = createRequire(import.meta.url)
    const pico = readFileSync(require.resolve('@picocss/pico/css/pico.classless.min.css'), 'utf8')
    css = `${pico}\n${OWN_CSS}`
  }
  return css
}

export const STYLESHEET_PATH = '/assets/sp-connect.css'

export function mountAssets<E extends Env>(app: Hono<E>): void {
  app.get(STYLESHEET_PATH, (c) => {
    c.header('Content-Type', 'text/css; charset=utf-8')
    return c.body(stylesheet())
  })
}
