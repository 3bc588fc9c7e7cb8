import type { Command } from 'commander'
import { startBackground } from '../../background.ts'
import { loadConfigFromEnv } from '../../config.ts'
import { storedKeyIdsMissingFrom } from '../../core/crypto/key-health.ts'
import { defaultDeps } from '../../core/deps.ts'
import { createLogger } from '../../logger.ts'
import { openRuntime } from '../../runtime.ts'
import { createServerApp } from '../../server/app.ts'
import { createMetricsApp, PrometheusMetrics } from '../../server/metrics.ts'
import { listen } from '../listen.ts'
import { onShutdown } from '../shutdown.ts'

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'run the sp-connect service for production, configured by environment variables (see README)',
    )
    .action(async () => {
      const config = loadConfigFromEnv(process.env)
      const logger = createLogger(config.logLevel)
      const runtime = await openRuntime(config, defaultDeps({ logger, metrics: new PrometheusMetrics() }))
      const server = await listen(createServerApp(runtime).fetch, config.port, config.host)
      const metricsAddress = config.metrics?.address ?? null
      const metricsServer = metricsAddress
        ? await listen(createMetricsApp(runtime).fetch, metricsAddress.port, metricsAddress.host)
        : undefined
      const background = startBackground(runtime)
      // Not fatal (the other rows still work), but every token request for those rows fails with key_unavailable.
      const missingKeyIds = await storedKeyIdsMissingFrom(runtime.store, runtime.keyring)
      if (missingKeyIds.length > 0) {
        logger.warn(
          { event: 'keys.missing', keyIds: missingKeyIds, variable: 'SP_CONNECT_ENCRYPTION_KEYS' },
          'stored rows are encrypted under key ids the keyring lacks: put those keys back (docs/key-rotation.md)',
        )
      }
      if (config.appSignInUrl === null) {
        // Not fatal (an app may use only the website workflow), but Amazon's Login URI then refuses every request.
        logger.warn(
          { variable: 'SP_CONNECT_APP_SIGNIN_URL' },
          'no app sign-in page configured: Appstore authorizations and re-authorizations from Amazon will be refused',
        )
      }
      logger.info(
        { port: server.port, host: config.host, publicUrl: config.publicUrl },
        'sp-connect is serving',
      )
      onShutdown(async () => {
        await server.close()
        await metricsServer?.close()
        await background.stop()
        await runtime.close()
      })
    })
}
