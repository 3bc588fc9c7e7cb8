import type { Command } from 'commander'
import { startBackground } from '../../background.ts'
import { loadConfigFromEnv } from '../../config.ts'
import { defaultDeps } from '../../core/deps.ts'
import { createLogger } from '../../logger.ts'
import { openRuntime } from '../../runtime.ts'
import { createServerApp } from '../../server/app.ts'
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
      const runtime = await openRuntime(config, defaultDeps({ logger }))
      const server = await listen(createServerApp(runtime).fetch, config.port, config.host)
      const background = startBackground(runtime)
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
        await background.stop()
        await runtime.close()
      })
    })
}
