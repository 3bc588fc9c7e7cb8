/**
 * `sp-connect doctor` as an operator runs it: the environment `serve` would read, checked against Amazon's
 * rules, the database opened without migrating, and the LWA credentials proven with one grantless call to the
 * simulator. One line per check; exit 0, 78 (configuration) or 69 (unreachable); never a secret value.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

interface DoctorJson {
  ok: boolean
  exit_code: number
  checks: { name: string; status: 'ok' | 'warn' | 'fail'; message: string; fix?: string }[]
}

/** The report line of one check: `<status>  <name>  <message>`. */
function line(stdout: string, name: string): string {
  return stdout.split('\n').find((l) => new RegExp(`^\\w+\\s+${name}\\s`).test(l)) ?? ''
}

describe('sp-connect doctor', () => {
  let stack: Stack

  beforeAll(async () => {
    stack = await startStack()
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('passes a production environment that points at the simulator, grantless call included', async () => {
    const counters = () =>
      fetch(`${stack.simulatorUrl}/_control/counters`).then(
        (r) => r.json() as Promise<{ byGrant: Record<string, number> }>,
      )
    const before = (await counters()).byGrant['client_credentials'] ?? 0
    const result = await runCli(['doctor'], { env: stack.env })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(line(result.stdout, 'lwa-credentials')).toMatch(/^ok\s+lwa-credentials\s+Amazon accepted/)
    expect(line(result.stdout, 'database')).toMatch(/^ok\s+database\s+SQLite reachable, schema up to date/)
    expect(line(result.stdout, 'app-id')).toMatch(/^ok\s/)
    expect(line(result.stdout, 'encryption-keys')).toMatch(/^ok\s/)
    // http to loopback is allowed by the test setting, and said to be for tests only.
    expect(line(result.stdout, 'redirect-uri')).toMatch(/^warn\s+redirect-uri\s+.*for tests only/)
    expect(result.stdout).toContain('All checks passed')
    expect((await counters()).byGrant['client_credentials'] ?? 0).toBe(before + 1)
    for (const name of ['SP_CONNECT_LWA_CLIENT_SECRET', 'SP_CONNECT_ENCRYPTION_KEYS', 'SP_CONNECT_API_KEYS'])
      expect(result.stdout).not.toContain((stack.env[name] ?? '').split(':').pop())

    const json = await runCli(['doctor', '--json'], { env: stack.env })
    expect(json.code).toBe(0)
    const report = JSON.parse(json.stdout) as DoctorJson
    expect(report.ok).toBe(true)
    expect(report.exit_code).toBe(0)
    expect(report.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['public-url', 'redirect-uri', 'login-uri', 'app-id', 'lwa-client-id']),
    )
    expect(report.checks.find((c) => c.name === 'lwa-credentials')?.status).toBe('ok')
    expect(report.checks.every((c) => c.status !== 'fail')).toBe(true)
  })

  it('fails the grantless check with exit 78 and a fix when Amazon rejects the client secret', async () => {
    const wrong = `amzn1.oa2-cs.v1.${randomBytes(32).toString('hex')}`
    const result = await runCli(['doctor'], { env: { ...stack.env, SP_CONNECT_LWA_CLIENT_SECRET: wrong } })
    expect(result.code).toBe(78)
    expect(line(result.stdout, 'lwa-credentials')).toMatch(
      /^fail\s+lwa-credentials\s+Amazon rejected the LWA client id and secret \(invalid_client\)/,
    )
    expect(result.stdout).toMatch(/fix: Copy the client identifier and client secret/)
    expect(result.stdout).not.toContain(wrong)
    expect(result.stdout).not.toContain(stack.env['SP_CONNECT_LWA_CLIENT_SECRET'])
  })

  it('reports a bad key, an http redirect URI and a client id in the app id slot all at once', async () => {
    const env = {
      ...stack.env,
      SP_CONNECT_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32).toString('base64')}`,
      SP_CONNECT_REDIRECT_URI: 'http://connect.example.com/callback',
      SP_CONNECT_APP_ID: stack.env['SP_CONNECT_LWA_CLIENT_ID'] ?? '',
    }
    const result = await runCli(['doctor'], { env })
    expect(result.code).toBe(78)
    expect(line(result.stdout, 'encryption-keys')).toMatch(/^fail\s+encryption-keys\s+.*key "k1" is all zero/)
    expect(line(result.stdout, 'redirect-uri')).toMatch(/^fail\s+redirect-uri\s+.*must be https:\/\//)
    expect(line(result.stdout, 'app-id')).toMatch(
      /^fail\s+app-id\s+SP_CONNECT_APP_ID holds an LWA client id, not an app id/,
    )
    // The credentials themselves are fine: Amazon still accepts them.
    expect(line(result.stdout, 'lwa-credentials')).toMatch(/^ok\s/)
    expect(result.stdout).toContain('3 check(s) failed.')

    const json = JSON.parse((await runCli(['doctor', '--json'], { env })).stdout) as DoctorJson
    expect(json.exit_code).toBe(78)
    expect(
      json.checks
        .filter((c) => c.status === 'fail')
        .map((c) => c.name)
        .sort(),
    ).toEqual(['app-id', 'encryption-keys', 'redirect-uri'])
    expect(json.checks.every((c) => c.status !== 'fail' || (c.fix ?? '').length > 0)).toBe(true)
  })

  it('flags a redirect URI on another origin than the public URL', async () => {
    const result = await runCli(['doctor'], {
      env: { ...stack.env, SP_CONNECT_REDIRECT_URI: 'https://elsewhere.example.com/callback' },
    })
    expect(result.code).toBe(78)
    expect(line(result.stdout, 'redirect-uri')).toMatch(/not the public origin/)
  })

  it('exits 69 when the LWA token endpoint cannot be reached', async () => {
    const result = await runCli(['doctor'], {
      env: { ...stack.env, SP_CONNECT_LWA_TOKEN_URL: 'http://127.0.0.1:1/auth/o2/token' },
    })
    expect(result.code).toBe(69)
    expect(line(result.stdout, 'lwa-credentials')).toMatch(/^fail\s+lwa-credentials\s+.*could not be reached/)
  })

  it('warns about an unset app sign-in URL and still passes', async () => {
    const { SP_CONNECT_APP_SIGNIN_URL: _, ...env } = stack.env
    const result = await runCli(['doctor'], { env })
    expect(result.code).toBe(0)
    expect(line(result.stdout, 'app-signin-url')).toMatch(/^warn\s+app-signin-url\s+unset/)
  })
})
