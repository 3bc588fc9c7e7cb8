/** The simulator's only stylesheet, served from the simulator itself (CSP `style-src 'self'`). */
export const SIMULATOR_CSS = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#0f1111;background:#f3f3f3}
.sim-banner{background:#232f3e;color:#fff;padding:.5rem 1rem;font-size:13px}
.sim-banner strong{color:#febd69}
.sim-host{opacity:.8;margin-left:.5rem}
main{max-width:40rem;margin:2rem auto;background:#fff;border:1px solid #d5d9d9;border-radius:8px;padding:1.5rem 2rem}
h1{font-size:1.5rem;font-weight:500;margin:0 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
label{display:block;font-weight:700;margin:.75rem 0 .25rem}
input[type=text]{width:100%;padding:.4rem .5rem;border:1px solid #888c8c;border-radius:4px;font:inherit}
.buttons{display:flex;gap:.75rem;margin-top:1.5rem}
button,.button{display:inline-block;padding:.45rem 1.2rem;border-radius:20px;border:1px solid #fcd200;background:#ffd814;color:#0f1111;font:inherit;text-decoration:none;cursor:pointer}
button.secondary,.button.secondary{background:#fff;border-color:#d5d9d9}
.notice{background:#fff8e1;border:1px solid #f0c36d;border-radius:4px;padding:.5rem .75rem}
.error{border-left:4px solid #c40000;padding-left:1rem}
.error .code{font-family:ui-monospace,Menlo,Consolas,monospace}
.muted{color:#565959;font-size:13px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .3rem;border-bottom:1px solid #e7e7e7;vertical-align:top}
td form{display:inline}
`
