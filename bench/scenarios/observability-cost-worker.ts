/**
 * One sp-connect HTTP instance for observability-cost.ts, in a process of its own, built as `serve` builds it
 * except for the part under test: `on` logs at `info` with the production pino logger (to stdout, which the
 * parent discards, as `serve` writes its JSON lines) and records Prometheus metrics; `off` logs nothing and
 * records no metrics. Request ids (AsyncLocalStorage) run in both. Exits when its parent goes away.
 */

import { listen } from '../../src/cli/listen.ts'
import { loadConfigFromEnv } from '../../src/config.ts'
import { defaultDeps, silentLogger } from '../../src/core/deps.ts'
import { createLogger } from '../../src/logger.ts'
import { openRuntime } from '../../src/runtime.ts'
import { createServerApp } from '../../src/server/app.ts'
import { PrometheusMetrics } from '../../src/server/metrics.ts'

export type CostWorkerRequest = { readonly mode: 'on' | 'off'; readonly env: Record<string, string> }
export type CostWorkerReply =
  | { readonly type: 'ready'; readonly url: string }
  | { readonly type: 'error'; readonly message: string }

process.on('disconnect', () => process.exit(0))
process.once('message', async (message: CostWorkerRequest) => {
  try {
    const config = loadConfigFromEnv(message.env)
    const deps =
      message.mode === 'on'
        ? defaultDeps({ logger: createLogger('info'), metrics: new PrometheusMetrics() })
        : defaultDeps({ logger: silentLogger })
    const runtime = await openRuntime(config, deps, { migrate: false })
    const server = await listen(createServerApp(runtime).fetch, 0, '127.0.0.1')
    process.send?.({ type: 'ready', url: `http://127.0.0.1:${server.port}` } satisfies CostWorkerReply)
  } catch (error) {
    process.send?.({ type: 'error', message: String(error) } satisfies CostWorkerReply)
  }
})
