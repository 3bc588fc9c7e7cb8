#!/usr/bin/env node
/**
 * The sp-connect command line. Errors print their fixed message and code on stderr (never a token) and exit
 * with a code chosen by error code.
 */
import { Command, CommanderError } from 'commander'
import { ConfigError } from '../config.ts'
import { isSpConnectError } from '../domain/errors.ts'
import { registerApiKeyCommands } from './commands/api-keys.ts'
import { registerConnectionCommands } from './commands/connections.ts'
import { registerDevCommand } from './commands/dev.ts'
import { registerDoctorCommand } from './commands/doctor.ts'
import { registerEventCommands } from './commands/events.ts'
import { registerKeyCommands } from './commands/keys.ts'
import { registerMigrateCommand } from './commands/migrate.ts'
import { registerOperatorCommands } from './commands/operators.ts'
import { registerSecretCommands } from './commands/secrets.ts'
import { registerServeCommand } from './commands/serve.ts'
import { registerSimulatorCommand } from './commands/simulator.ts'
import { registerTokenCommands } from './commands/token.ts'
import { EXIT, exitCodeFor } from './exit-codes.ts'

export function buildProgram(): Command {
  const program = new Command()
    .name('sp-connect')
    .description('Connect Amazon seller and vendor accounts through the SP-API authorization workflows.')
    .version('0.1.0')
    .exitOverride()
  registerDevCommand(program)
  registerServeCommand(program)
  registerDoctorCommand(program)
  registerSimulatorCommand(program)
  registerConnectionCommands(program)
  registerTokenCommands(program)
  registerMigrateCommand(program)
  registerEventCommands(program)
  registerSecretCommands(program)
  registerKeyCommands(program)
  registerOperatorCommands(program)
  registerApiKeyCommands(program)
  return program
}

export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv])
  } catch (error) {
    process.exitCode = report(error)
  }
}

function report(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`)
    return exitCodeFor(error.code)
  }
  if (isSpConnectError(error)) {
    const detail = error.code === 'invalid_request' && error.detail ? ` (${error.detail})` : ''
    process.stderr.write(`error: ${error.message}${detail} [${error.code}]\n`)
    return exitCodeFor(error.code)
  }
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`)
  return EXIT.failure
}

if (import.meta.main) await main(process.argv)
