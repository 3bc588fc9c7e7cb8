/**
 * `sp-connect operators create|list|delete` as a user runs them, against the same database a running service
 * uses (production configuration from the environment): the password comes from stdin and is never printed,
 * short passwords are refused, and the accounts work (and stop working) on the console at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BrowserClient } from '../helpers/browser-client.ts'
import { runCli } from '../helpers/cli.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const PASSWORD = 'a long operator passphrase'

let stack: Stack

beforeAll(async () => {
  stack = await startStack()
})
afterAll(async () => {
  await stack?.close()
})

async function signIn(email: string, password: string): Promise<number> {
  const client = new BrowserClient()
  const page = await client.get(`${stack.serviceUrl}/console/sign-in`)
  const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1] ?? ''
  const result = await client.post(`${stack.serviceUrl}/console/sign-in`, { csrf, email, password })
  return result.status
}

describe('sp-connect operators', () => {
  it('creates an operator from a password on stdin, never echoing it, and the operator can sign in', async () => {
    const created = await runCli(['operators', 'create', '--email', 'Alice@Example.com'], {
      env: stack.env,
      input: `${PASSWORD}\n`,
    })
    expect(created.stderr).toBe('')
    expect(created.code).toBe(0)
    expect(created.stdout).toBe('Created operator alice@example.com.\n')
    expect(created.stdout + created.stderr).not.toContain(PASSWORD)
    expect(await signIn('alice@example.com', PASSWORD)).toBe(303)

    const again = await runCli(['operators', 'create', '--email', 'alice@example.com'], {
      env: stack.env,
      input: PASSWORD,
    })
    expect(again.code).not.toBe(0)
    expect(again.stderr).toContain('[operator_exists]')
    expect(again.stdout + again.stderr).not.toContain(PASSWORD)
  })

  it('refuses a password under 12 characters and creates nothing', async () => {
    const short = await runCli(['operators', 'create', '--email', 'bob@example.com'], {
      env: stack.env,
      input: 'short-pw-11',
    })
    expect(short.code).toBe(2)
    expect(short.stderr).toContain('at least 12 characters')
    expect(short.stdout + short.stderr).not.toContain('short-pw-11')
    const listed = await runCli(['operators', 'list', '--json'], { env: stack.env })
    const emails = (JSON.parse(listed.stdout) as { email: string }[]).map((o) => o.email)
    expect(emails).not.toContain('bob@example.com')
  })

  it('lists operators without their hashes, and deleting one ends their sessions', async () => {
    const created = await runCli(['operators', 'create', '--email', 'carol@example.com'], {
      env: stack.env,
      input: PASSWORD,
    })
    expect(created.code).toBe(0)
    const client = new BrowserClient()
    const page = await client.get(`${stack.serviceUrl}/console/sign-in`)
    const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1] ?? ''
    expect(
      (
        await client.post(`${stack.serviceUrl}/console/sign-in`, {
          csrf,
          email: 'carol@example.com',
          password: PASSWORD,
        })
      ).status,
    ).toBe(303)
    expect((await client.get(`${stack.serviceUrl}/`)).status).toBe(200)

    const table = await runCli(['operators', 'list'], { env: stack.env })
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/^EMAIL\s+CREATED\s+LAST SIGN-IN\n/)
    expect(table.stdout).toContain('carol@example.com')
    const json = await runCli(['operators', 'list', '--json'], { env: stack.env })
    expect(json.stdout).not.toMatch(/argon2|scrypt|password/)
    const rows = JSON.parse(json.stdout) as { email: string; last_sign_in_at: string | null }[]
    expect(rows.find((r) => r.email === 'carol@example.com')?.last_sign_in_at).toBeTruthy()

    const deleted = await runCli(['operators', 'delete', 'carol@example.com'], { env: stack.env })
    expect(deleted.code).toBe(0)
    expect(deleted.stdout).toBe('Deleted operator carol@example.com.\n')
    expect((await client.get(`${stack.serviceUrl}/`)).status).toBe(303)
    expect(await signIn('carol@example.com', PASSWORD)).toBe(401)

    const missing = await runCli(['operators', 'delete', 'carol@example.com'], { env: stack.env })
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain('[operator_not_found]')
  })
})
