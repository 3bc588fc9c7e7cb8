import type { Command } from 'commander'
import { openStore } from '../../store/open.ts'
import { resolveConfig, type TargetOptions } from '../context.ts'
import { printOutput, printTable } from '../output.ts'

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('bring the database schema up to date')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print JSON')
    .action(async (opts: TargetOptions & { json?: boolean }) => {
      const store = await openStore(resolveConfig(opts).database)
      try {
        const outcomes = await store.migrate()
        printOutput(
          opts.json,
          outcomes.map((o) => ({ name: o.name, status: o.status })),
          () => printTable([['MIGRATION', 'STATUS'], ...outcomes.map((o) => [o.name, o.status])]),
        )
        if (outcomes.some((o) => o.status === 'failed')) process.exitCode = 1
      } finally {
        await store.close()
      }
    })
}
