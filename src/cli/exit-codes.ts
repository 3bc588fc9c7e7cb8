/**
 * CLI exit codes by error code. The mapping is the `exit` column of the one `ERROR_CODES` table
 * (src/core/errors.ts); this module only gives the CLI its short names.
 */
import { type ErrorCode, EXIT_CODES, exitCodeOf } from '../domain/errors.ts'

export const EXIT = EXIT_CODES

export function exitCodeFor(code: ErrorCode): number {
  return exitCodeOf(code)
}
