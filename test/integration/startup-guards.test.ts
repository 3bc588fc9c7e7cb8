/**
 * Start-up refusals, as an operator meets them (real child processes): `serve` will not run with TLS
 * certificate checks turned off, and `migrate`/`serve` on a SQLite path that cannot be created fail at once
 * with a clear message and exit 78 instead of hanging. The kill timeout of the helper is only a backstop:
 * the assertions are on exit codes and output, never on timings.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, spawnCli } from '../helpers/cli.ts'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sp-connect-guards-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

/** A complete production environment (https everywhere, so no insecure setting is needed). */
function productionEnv(databaseUrl: string): Record<string, string> {
  return {
    SP_CONNECT_PUBLIC_URL: 'https://connect.example.com',
    SP_CONNECT_APP_ID: 'amzn1.sp.solution.11111111-2222-3333-4444-555555555555',
    SP_CONNECT_LWA_CLIENT_ID: 'amzn1.application-oa2-client.0123456789abcdef',
    SP_CONNECT_LWA_CLIENT_SECRET: `amzn1.oa2-cs.v1.${randomBytes(16).toString('hex')}`,
    DATABASE_URL: databaseUrl,
    SP_CONNECT_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    SP_CONNECT_API_KEYS: `backend:${randomBytes(24).toString('base64url')}`,
    SP_CONNECT_REFRESHER: 'off',
    PORT: '0',
    SP_CONNECT_HOST: '127.0.0.1',
  }
}

describe('serve and TLS certificate checks', () => {
  it('refuses to start with NODE_TLS_REJECT_UNAUTHORIZED=0, naming the variable, exit 78', async () => {
    const env: Record<string, string> = {
      ...productionEnv(join(dir, 'tls.db')),
      NODE_TLS_REJECT_UNAUTHORIZED: '0',
    }
    const result = await runCli(['serve'], { env })
    expect(result.code).toBe(78)
    expect(result.stdout).toBe('')
    const problems = result.stderr.trimEnd().split('\n').slice(1)
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^ {2}- NODE_TLS_REJECT_UNAUTHORIZED=0 turns off TLS certificate checks/)
    expect(result.stderr).not.toContain(env['SP_CONNECT_LWA_CLIENT_SECRET'])
  })

  it('runs under the documented insecure loopback test setting', async () => {
    const env = {
      ...productionEnv(join(dir, 'tls-insecure.db')),
      NODE_TLS_REJECT_UNAUTHORIZED: '0',
      SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK: '1',
    }
    const child = spawnCli(['serve'], { env, timeoutMs: 60_000 })
    let output = ''
    try {
      await new Promise<void>((resolve, reject) => {
        const onData = (chunk: string) => {
          output += chunk
          if (output.includes('sp-connect is serving')) resolve()
        }
        child.stdout.on('data', onData)
        child.stderr.on('data', onData)
        child.once('exit', () => reject(new Error(`serve exited:\n${output}`)))
      })
    } finally {
      child.kill('SIGTERM')
      if (child.exitCode === null) await once(child, 'exit')
    }
    expect(output).not.toContain('NODE_TLS_REJECT_UNAUTHORIZED')
  })
})

describe('a SQLite path that cannot be created', () => {
  const CLEAR = 'The SQLite database cannot be created or written'

  // Tests run as root, where permission bits stop nothing. These paths fail for root too: a directory
  // "inside" a regular file (ENOTDIR), and one under /proc, where the kernel refuses mkdir and Node's
  // recursive mkdir used to retry forever (the hang this guards against).
  const cases: [string, () => string][] = [
    [
      'under a regular file',
      () => {
        const file = join(dir, 'a-regular-file')
        writeFileSync(file, 'not a directory')
        return join(file, 'db', 'sp-connect.db')
      },
    ],
    ['under /proc', () => `/proc/sp-connect-test-${randomBytes(4).toString('hex')}/sp-connect.db`],
  ]

  it.each(cases)('migrate fails with a clear message and exit 78 (%s)', async (_label, path) => {
    const result = await runCli(['migrate'], { env: productionEnv(path()) })
    expect(result.signal).toBeNull()
    expect(result.code).toBe(78)
    expect(result.stderr).toContain(CLEAR)
    expect(result.stderr).toContain('[database_unusable]')
  })

  it.each(cases)('serve fails with a clear message and exit 78 (%s)', async (_label, path) => {
    const result = await runCli(['serve'], { env: productionEnv(path()) })
    expect(result.signal).toBeNull()
    expect(result.code).toBe(78)
    expect(result.stderr).toContain(CLEAR)
  })
})
