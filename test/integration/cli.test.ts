/**
 * The sp-connect CLI as a user runs it: real child processes (`node src/cli/main.ts …`) against a running
 * deployment (`startStack()`), configured only through the environment, sharing the service's SQLite file.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openToken } from '../../src/core/tokens/sealed.ts'
import { MIGRATIONS } from '../../src/store/migrations/index.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { runCli as runCliHelper } from '../helpers/cli.ts'
import { connectSeller, randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const MISSING_MESSAGE = 'error: No connection has that id. [connection_not_found]\n'
const REQUIRED_VARIABLES = [
  'SP_CONNECT_PUBLIC_URL',
  'SP_CONNECT_APP_ID',
  'SP_CONNECT_LWA_CLIENT_ID',
  'SP_CONNECT_LWA_CLIENT_SECRET',
  'DATABASE_URL',
  'SP_CONNECT_ENCRYPTION_KEYS',
  'SP_CONNECT_API_KEYS',
] as const

/** Every CLI output of this file, to prove at the end that none of them carried a refresh token. */
const outputs: string[] = []

/** Runs the CLI with exactly `env` (plus PATH/HOME), feeding `input` on stdin, and waits for it to exit. */
function runCli(args: readonly string[], env: Record<string, string>, input = '') {
  return runCliHelper(args, { env, input, onOutput: (stdout, stderr) => outputs.push(stdout, stderr) })
}

describe('sp-connect CLI against a running deployment', () => {
  let stack: Stack
  let env: Record<string, string>
  let scratch: string
  let connectionId: string
  let sellingPartnerId: string
  /** Every refresh token this file knows of (issued by the simulator, or stored by the service). */
  const knownRefreshTokens: string[] = []

  const cli = (args: readonly string[], input?: string) => runCli(args, env, input)
  const listJson = async () => {
    const listed = await cli(['connections', 'list', '--json'])
    expect(listed.code).toBe(0)
    return JSON.parse(listed.stdout) as Record<string, unknown>[]
  }

  beforeAll(async () => {
    stack = await startStack()
    env = { ...stack.env }
    scratch = mkdtempSync(join(tmpdir(), 'sp-connect-cli-'))
    const connected = await connectSeller(stack, new BrowserClient(), { tenantId: 'cli-tenant' })
    connectionId = connected.connectionId
    sellingPartnerId = connected.sellingPartnerId
    const row = await stack.runtime.store.getConnection(connectionId)
    knownRefreshTokens.push(
      openToken(stack.runtime.keyring, connectionId, 'refresh_token', row?.refreshTokenCiphertext ?? ''),
    )
  })
  afterAll(async () => {
    await stack?.close()
    if (scratch) rmSync(scratch, { recursive: true, force: true })
  })

  it('migrate: reports the schema as up to date on the deployment, and creates a fresh database', async () => {
    const names = MIGRATIONS.map((m) => m.name)
    const current = await cli(['migrate'])
    expect(current.code).toBe(0)
    expect(current.stderr).toBe('')
    expect(current.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^MIGRATION\s+STATUS$/),
      ...names.map((n) => expect.stringMatching(new RegExp(`^${n}\\s+already_applied$`))),
    ])

    const freshEnv = { ...env, DATABASE_URL: join(scratch, 'fresh.db') }
    const first = await runCli(['migrate'], freshEnv)
    expect(first.code).toBe(0)
    expect(first.stdout.trimEnd().split('\n').slice(1)).toEqual(
      names.map((n) => expect.stringMatching(new RegExp(`^${n}\\s+applied$`))),
    )
    const again = await runCli(['migrate'], freshEnv)
    expect(again.code).toBe(0)
    expect(again.stdout.trimEnd().split('\n').slice(1)).toEqual(
      names.map((n) => expect.stringMatching(new RegExp(`^${n}\\s+already_applied$`))),
    )
  })

  it('connections list prints a table with the connection made through the website', async () => {
    const listed = await cli(['connections', 'list'])
    expect(listed.code).toBe(0)
    expect(listed.stderr).toBe('')
    const lines = listed.stdout.trimEnd().split('\n')
    expect(lines[0]?.split(/\s{2,}/)).toEqual([
      'ID',
      'SELLING PARTNER',
      'REGION',
      'TYPE',
      'STATUS',
      'AUTHORIZED',
      'REAUTHORIZE BY',
    ])
    const api = await stack.api('GET', `/v1/connections/${connectionId}`)
    const row = lines.find((line) => line.startsWith(connectionId))
    expect(row?.split(/\s+/)).toEqual([
      connectionId,
      sellingPartnerId,
      'na',
      'seller',
      'active',
      String(api.json['authorized_at']).slice(0, 10),
      String(api.json['reauthorize_by']).slice(0, 10),
    ])
  })

  it('connections list --json prints exactly what the API lists', async () => {
    const listed = await cli(['connections', 'list', '--json'])
    expect(listed.code).toBe(0)
    const api = await stack.api('GET', '/v1/connections')
    expect(JSON.parse(listed.stdout)).toEqual(api.json['data'])
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({
        id: connectionId,
        selling_partner_id: sellingPartnerId,
        tenant_id: 'cli-tenant',
        status: 'active',
      }),
    ])

    const filtered = await cli(['connections', 'list', '--json', '--status', 'disconnected'])
    expect(JSON.parse(filtered.stdout)).toEqual([])
    const badStatus = await cli(['connections', 'list', '--status', 'bogus'])
    expect(badStatus.code).toBe(2)
    expect(badStatus.stdout).toBe('')
  })

  it('connections show prints one connection as a table and as JSON', async () => {
    const api = await stack.api('GET', `/v1/connections/${connectionId}`)
    const json = await cli(['connections', 'show', connectionId, '--json'])
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toEqual(api.json)

    const table = await cli(['connections', 'show', connectionId])
    expect(table.code).toBe(0)
    const fields = new Map(
      table.stdout
        .trimEnd()
        .split('\n')
        .map((line) => {
          const match = line.match(/^(\S+):\s+(.*)$/)
          return [match?.[1] ?? line, match?.[2] ?? ''] as const
        }),
    )
    expect([...fields.keys()]).toEqual(Object.keys(api.json))
    expect(fields.get('id')).toBe(connectionId)
    expect(fields.get('selling_partner_id')).toBe(sellingPartnerId)
    expect(fields.get('status')).toBe('active')
    expect(fields.get('authorized_at')).toBe(api.json['authorized_at'])
    expect(fields.get('status_reason')).toBe('—')
  })

  it('connections show <unknown> exits 3 with the fixed message and prints nothing on stdout', async () => {
    const result = await cli(['connections', 'show', 'con_doesnotexist'])
    expect(result.code).toBe(3)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(MISSING_MESSAGE)
    const json = await cli(['connections', 'show', 'con_doesnotexist', '--json'])
    expect(json.code).toBe(3)
    expect(json.stdout).toBe('')
    expect(json.stderr).toBe(MISSING_MESSAGE)
  })

  it('token <id> prints exactly one line, the access token, which SP-API accepts', async () => {
    const result = await cli(['token', connectionId])
    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    expect(result.stdout).toMatch(/^Atza\|[\x21-\x7e]+\n$/)
    const token = result.stdout.slice(0, -1)
    const api = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(token).toBe(api.json['access_token'])
    const spapi = await fetch(
      `${stack.simulatorUrl}/sellingpartnerapi-na.amazon.com/sellers/v1/marketplaceParticipations`,
      { headers: { 'x-amz-access-token': token } },
    )
    expect(spapi.status).toBe(200)

    const unknown = await cli(['token', 'con_doesnotexist'])
    expect(unknown.code).toBe(3)
    expect(unknown.stdout).toBe('')
  })

  it('call <id> GET /sellers/v1/marketplaceParticipations prints the simulated SP-API JSON', async () => {
    const result = await cli(['call', connectionId, 'GET', '/sellers/v1/marketplaceParticipations'])
    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    const printed = JSON.parse(result.stdout) as { payload: { marketplace: { id: string } }[] }
    // The simulator answers each seller with its own participations (a subset of the region's marketplaces).
    expect(printed.payload.length).toBeGreaterThan(0)
    for (const p of printed.payload)
      expect(['ATVPDKIKX0DER', 'A2EUQ1WTGCTBG2', 'A1AM78C64UM0Y8', 'A2Q3Y263D00KWC']).toContain(
        p.marketplace.id,
      )
    const token = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    const direct = await fetch(
      `${stack.simulatorUrl}/sellingpartnerapi-na.amazon.com/sellers/v1/marketplaceParticipations`,
      { headers: { 'x-amz-access-token': String(token.json['access_token']) } },
    )
    expect(printed).toEqual(await direct.json())

    // A path that is no SP-API operation is refused before anything is sent: a usage error.
    const unknown = await cli(['call', connectionId, 'GET', '/nothing/v1/here'])
    expect(unknown.code).toBe(2)
    expect(unknown.stdout).toBe('')
    expect(unknown.stderr).toContain('spapi_operation_unknown')

    // Amazon's own 404 is printed as it came, with exit 1.
    const notFound = await cli(['call', connectionId, 'GET', '/orders/v0/orders/999-0000000-0000000'])
    expect(notFound.code).toBe(1)
    expect(JSON.parse(notFound.stdout)).toEqual({
      errors: [{ code: 'NotFound', message: 'Resource not found.' }],
    })
    expect(notFound.stderr).toMatch(/^SP-API answered HTTP 404 \(request id [^)]+\)\n$/)
  })

  it('connections add verifies a self-authorized refresh token with one refresh, then lists it', async () => {
    const partner = randomSellingPartnerId()
    const refreshToken = stack.simulator.selfAuthorize(stack.app.appId, partner, 'na')
    knownRefreshTokens.push(refreshToken)
    const before = stack.simulator.counters()
    const added = await cli(
      ['connections', 'add', '--selling-partner-id', partner, '--region', 'na'],
      `${refreshToken}\n`,
    )
    expect(added.stderr).toBe('')
    expect(added.code).toBe(0)
    expect(added.stdout).toMatch(/^Added con_[A-Za-z0-9_-]+\n$/)
    const newId = added.stdout.trim().slice('Added '.length)
    const after = stack.simulator.counters()
    expect(after.total - before.total).toBe(1)
    expect(after.byGrant.refresh_token - before.byGrant.refresh_token).toBe(1)

    const listed = await listJson()
    expect(listed).toContainEqual(
      expect.objectContaining({
        id: newId,
        selling_partner_id: partner,
        region: 'na',
        account_type: 'seller',
        status: 'active',
        tenant_id: null,
      }),
    )
    const stored = await stack.runtime.store.getConnection(newId)
    expect(stored?.refreshTokenCiphertext).not.toContain(refreshToken)
    // Amazon may rotate the refresh token on refresh; record whatever is stored so it is checked too.
    knownRefreshTokens.push(
      openToken(stack.runtime.keyring, newId, 'refresh_token', stored?.refreshTokenCiphertext ?? ''),
    )

    // The same seller again re-authorizes the same connection.
    const second = stack.simulator.selfAuthorize(stack.app.appId, partner, 'na')
    knownRefreshTokens.push(second)
    const again = await cli(
      ['connections', 'add', '--selling-partner-id', partner, '--region', 'na', '--json'],
      second,
    )
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({
      id: newId,
      selling_partner_id: partner,
      status: 'active',
    })
  })

  it('connections add with a revoked or made-up token fails, stores nothing and never echoes the token', async () => {
    const partner = randomSellingPartnerId()
    const revoked = stack.simulator.selfAuthorize(stack.app.appId, partner, 'na')
    stack.simulator.revoke(partner)
    const garbage = `Atzr|${'x'.repeat(40)}IwEBIGarbage`
    knownRefreshTokens.push(revoked, garbage)

    for (const token of [revoked, garbage]) {
      const before = stack.simulator.counters()
      const result = await cli(
        ['connections', 'add', '--selling-partner-id', partner, '--region', 'na'],
        `${token}\n`,
      )
      expect(result.code).not.toBe(0)
      expect(result.code).toBe(4)
      expect(result.stdout).toBe('')
      expect(result.stderr).toBe(
        'error: Amazon rejected the grant (revoked, expired or already used). [lwa_invalid_grant]\n',
      )
      expect(result.stdout + result.stderr).not.toContain(token)
      expect(result.stdout + result.stderr).not.toContain(token.slice(5))
      expect(stack.simulator.counters().byGrant.refresh_token - before.byGrant.refresh_token).toBe(1)
    }
    expect(await stack.runtime.store.findConnection(partner, 'na')).toBeUndefined()
    expect((await listJson()).map((c) => c['selling_partner_id'])).not.toContain(partner)

    // Not a refresh token at all: refused before Amazon is asked, and not echoed either.
    const before = stack.simulator.counters()
    const notAToken = await cli(
      ['connections', 'add', '--selling-partner-id', partner, '--region', 'na'],
      'Atza|an-access-token-by-mistake\n',
    )
    expect(notAToken.code).toBe(2)
    expect(notAToken.stdout).toBe('')
    expect(notAToken.stderr).toBe(
      'error: The request is malformed or has invalid parameters. (stdin must hold one LWA refresh token (Atzr|…, at most 2048 bytes)) [invalid_request]\n',
    )
    expect(stack.simulator.counters().total).toBe(before.total)
    expect(await stack.runtime.store.findConnection(partner, 'na')).toBeUndefined()
  })

  it('connections revoke disconnects: tokens deleted in the store, token <id> then exits 4', async () => {
    const partner = randomSellingPartnerId()
    const refreshToken = stack.simulator.selfAuthorize(stack.app.appId, partner, 'na')
    knownRefreshTokens.push(refreshToken)
    const added = await cli(
      ['connections', 'add', '--selling-partner-id', partner, '--region', 'na', '--json'],
      refreshToken,
    )
    expect(added.code).toBe(0)
    const id = String((JSON.parse(added.stdout) as Record<string, unknown>)['id'])
    expect((await cli(['token', id])).code).toBe(0)

    const revoked = await cli(['connections', 'revoke', id])
    expect(revoked.code).toBe(0)
    expect(revoked.stdout).toBe(`Disconnected ${id} (${partner}); its tokens are deleted.\n`)
    const row = await stack.runtime.store.getConnection(id)
    expect(row?.status).toBe('disconnected')
    expect(row?.refreshTokenCiphertext).toBeNull()
    expect(row?.accessTokenCiphertext).toBeNull()
    const shown = await cli(['connections', 'show', id, '--json'])
    expect(JSON.parse(shown.stdout)).toMatchObject({ id, status: 'disconnected' })
    const events = await stack.api('GET', `/v1/connections/${id}/events`)
    expect(events.json['data']).toContainEqual(
      expect.objectContaining({ type: 'connection.disconnected', data: { by: 'cli' } }),
    )

    const token = await cli(['token', id])
    expect(token.code).toBe(4)
    expect(token.stdout).toBe('')
    expect(token.stderr).toBe(
      'error: This connection was disconnected; authorize it again. [connection_disconnected]\n',
    )

    const unknown = await cli(['connections', 'revoke', 'con_doesnotexist'])
    expect(unknown.code).toBe(3)
    expect(unknown.stdout).toBe('')
    expect(unknown.stderr).toBe(MISSING_MESSAGE)
  })

  it('no command printed a refresh token, on stdout or stderr', () => {
    // Guards against a vacuous pass: the tests above ran the CLI and collected refresh tokens to look for.
    expect(outputs.length).toBeGreaterThan(40)
    expect(knownRefreshTokens.length).toBeGreaterThanOrEqual(6)
    const all = outputs.join('\n')
    // The prefix alone appears in the usage hint ("Atzr|…"); a token has token characters after it.
    expect(all).not.toMatch(/Atzr\|[\x21-\x7e]/)
    for (const token of knownRefreshTokens) {
      expect(token).toMatch(/^Atzr\|/)
      expect(all).not.toContain(token.slice('Atzr|'.length))
    }
  })
})

describe('sp-connect CLI with a bad environment', () => {
  it('serve with no configuration exits 78 and names every missing variable at once', async () => {
    const result = await runCli(['serve'], {})
    expect(result.code).toBe(78)
    expect(result.stdout).toBe('')
    const [heading, ...problems] = result.stderr.trimEnd().split('\n')
    expect(heading).toBe('Invalid configuration:')
    // All of them in one report, each once, and nothing else (the process never got as far as listening).
    expect(problems.sort()).toEqual(REQUIRED_VARIABLES.map((name) => `  - ${name} is required`).sort())
  })

  it('serve with some variables missing or wrong lists exactly those, never their values', async () => {
    const env: Record<string, string> = {
      SP_CONNECT_PUBLIC_URL: 'https://connect.example.com',
      SP_CONNECT_APP_ID: 'amzn1.sp.solution.11111111-2222-3333-4444-555555555555',
      SP_CONNECT_LWA_CLIENT_ID: 'amzn1.application-oa2-client.0123456789abcdef',
      // Too short to be a client secret: reported by name, its value never shown.
      SP_CONNECT_LWA_CLIENT_SECRET: 'tiny-secret',
      SP_CONNECT_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    }
    const result = await runCli(['serve'], env)
    expect(result.code).toBe(78)
    expect(result.stdout).toBe('')
    const problems = result.stderr
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((line) => line.replace(/^ {2}- /, '').split(' ')[0])
    expect(new Set(problems)).toEqual(
      new Set(['SP_CONNECT_LWA_CLIENT_SECRET', 'DATABASE_URL', 'SP_CONNECT_API_KEYS']),
    )
    expect(result.stderr).toContain('  - DATABASE_URL is required')
    expect(result.stderr).toContain('  - SP_CONNECT_API_KEYS is required')
    expect(result.stderr).not.toContain('tiny-secret')
    expect(result.stderr).not.toContain(env['SP_CONNECT_ENCRYPTION_KEYS'])
  })
})
