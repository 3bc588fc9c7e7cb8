/**
 * `sp-connect api-keys create|list|revoke` as a user runs them (child processes sharing the service's SQLite
 * file): the key is printed once, alone on the last line; `list` never shows a key or hash; a revoked key is
 * refused by the running service at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

describe('sp-connect api-keys', () => {
  let stack: Stack
  const cli = (args: readonly string[]) => runCli(args, { env: stack.env })
  const get = (key: string, path: string) =>
    fetch(`${stack.serviceUrl}${path}`, { headers: { authorization: `Bearer ${key}` } })

  beforeAll(async () => {
    stack = await startStack()
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('creates a key, prints it once on the last line, lists it without it, and revokes it', async () => {
    const created = await cli([
      'api-keys',
      'create',
      '--name',
      'reporting',
      '--scope',
      'read',
      '--tenant',
      'tenant-a',
      '--tenant',
      'tenant-b',
    ])
    expect(created.code).toBe(0)
    const lines = created.stdout.trimEnd().split('\n')
    const key = lines.at(-1) ?? ''
    expect(key).toMatch(/^spc_[A-Za-z0-9_-]{43}$/)
    // Once: the key appears on exactly one line, alone.
    expect(created.stdout.split(key).length - 1).toBe(1)
    expect(created.stderr).not.toContain(key)
    const id = created.stdout.match(/key_[A-Za-z0-9_-]+/)?.[0] ?? ''
    expect(id).not.toBe('')

    const stored = await stack.runtime.store.apiKeys.get(id)
    expect(stored).toMatchObject({ name: 'reporting', scopes: ['read'], tenants: ['tenant-a', 'tenant-b'] })
    expect((await get(key, '/v1/connections')).status).toBe(200)

    for (const args of [
      ['api-keys', 'list'],
      ['api-keys', 'list', '--json'],
    ]) {
      const listed = await cli(args)
      expect(listed.code).toBe(0)
      expect(listed.stdout).toContain(id)
      expect(listed.stdout).not.toContain(key)
      expect(listed.stdout).not.toContain(stored?.hash ?? '-')
    }
    const json = JSON.parse((await cli(['api-keys', 'list', '--json'])).stdout) as Record<string, unknown>[]
    expect(json.find((k) => k['id'] === id)).toMatchObject({ scopes: ['read'], revoked_at: null })

    const revoked = await cli(['api-keys', 'revoke', id])
    expect(revoked.code).toBe(0)
    expect((await get(key, '/v1/connections')).status).toBe(401)
    const after = JSON.parse((await cli(['api-keys', 'list', '--json'])).stdout) as Record<string, unknown>[]
    expect(after.find((k) => k['id'] === id)?.['revoked_at']).toBeTruthy()
  })

  it('with --json prints the details as JSON and the key alone on the last line', async () => {
    const created = await cli(['api-keys', 'create', '--name', 'ci', '--scope', 'tokens', '--json'])
    expect(created.code).toBe(0)
    const lines = created.stdout.trimEnd().split('\n')
    const key = lines.at(-1) ?? ''
    expect(key).toMatch(/^spc_/)
    const details = JSON.parse(lines.slice(0, -1).join('\n')) as Record<string, unknown>
    expect(details).toMatchObject({ name: 'ci', scopes: ['tokens'], tenants: null })
    expect(JSON.stringify(details)).not.toContain(key)
  })

  it('refuses a key without a scope, with an unknown scope, or a bad tenant, and creates nothing', async () => {
    const before = (await stack.runtime.store.apiKeys.list()).length
    for (const args of [
      ['api-keys', 'create', '--name', 'x'],
      ['api-keys', 'create', '--name', 'x', '--scope', 'admin'],
      ['api-keys', 'create', '--name', 'x', '--scope', 'read', '--tenant', 'a\u0001b'],
    ]) {
      const result = await cli(args)
      expect(result.code).not.toBe(0)
      expect(result.stdout).toBe('')
      expect(result.stderr).toContain('invalid_request')
    }
    expect((await stack.runtime.store.apiKeys.list()).length).toBe(before)
  })

  it('refuses to revoke a malformed or unknown id', async () => {
    expect((await cli(['api-keys', 'revoke', 'nope'])).stderr).toContain('invalid_request')
    const unknown = await cli(['api-keys', 'revoke', 'key_unknown000000000000'])
    expect(unknown.code).not.toBe(0)
    expect(unknown.stderr).toContain('not_found')
  })
})
