/**
 * Integrity and key alerts against a real stack (SQLite file, HTTP API, simulator): a ciphertext tampered with
 * in the database file, or sealed under a key the service lacks, fails closed *and* records an alert event with
 * its webhook delivery, naming the connection and key id and never the data. `serve` warns at start about
 * stored key ids its keyring lacks.
 */

import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { storedKeyIdsMissingFrom } from '../../src/core/crypto/key-health.ts'
import { Keyring } from '../../src/core/crypto/keyring.ts'
import { sealToken } from '../../src/core/tokens/sealed.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { spawnCli } from '../helpers/cli.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

/** Nobody listens here: deliveries stay pending, which is all these tests look at. */
const WEBHOOK_URL = 'http://127.0.0.1:9/hooks'

function flipByte(ciphertext: string): string {
  const parts = ciphertext.split('.')
  const body = Buffer.from(parts[4] ?? '', 'base64url')
  body[body.length - 1] = (body[body.length - 1] ?? 0) ^ 0x01
  return [...parts.slice(0, 4), body.toString('base64url')].join('.')
}

/** Writes straight into the service's SQLite file, as an attacker with the file (or a bad restore) would. */
function writeColumn(stack: Stack, connectionId: string, column: string, value: string): void {
  const db = new DatabaseSync(stack.dbPath)
  try {
    db.prepare(`update connections set ${column} = ? where id = ?`).run(value, connectionId)
  } finally {
    db.close()
  }
}

function readColumn(stack: Stack, connectionId: string, column: string): string {
  const db = new DatabaseSync(stack.dbPath, { readOnly: true })
  try {
    const row = db.prepare(`select ${column} as value from connections where id = ?`).get(connectionId)
    return String(row?.['value'])
  } finally {
    db.close()
  }
}

describe('integrity and key alerts', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({
      env: {
        SP_CONNECT_WEBHOOK_URLS: WEBHOOK_URL,
        SP_CONNECT_WEBHOOK_SECRET: randomBytes(32).toString('hex'),
      },
    })
  })
  afterAll(async () => {
    await stack?.close()
  })

  async function alertsFor(connectionId: string, type: string) {
    await stack.runtime.integrityAlerts.settled()
    return (await stack.runtime.store.listEvents({ connectionId })).filter((e) => e.type === type)
  }

  it('a tampered access token fails closed and raises one app.integrity_alert with its webhook', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    const original = readColumn(stack, connectionId, 'access_token_ciphertext')
    writeColumn(stack, connectionId, 'access_token_ciphertext', flipByte(original))

    const answers = [
      await stack.api('POST', `/v1/connections/${connectionId}/access-token`),
      await stack.api('POST', `/v1/connections/${connectionId}/access-token`),
    ]
    for (const answer of answers) {
      expect(answer.status).toBe(500)
      expect((answer.json['error'] as { code: string }).code).toBe('decryption_failed')
    }

    // Two failed requests, one alert: rate-limited per connection and kind.
    const alerts = await alertsFor(connectionId, 'app.integrity_alert')
    expect(alerts).toHaveLength(1)
    expect(alerts[0]?.data).toEqual({
      code: 'decryption_failed',
      keyId: 'k1',
      table: 'connections',
      column: 'access_token',
    })
    const text = JSON.stringify(alerts)
    expect(text).not.toContain(original.split('.')[4])
    const deliveries = await stack.runtime.store.listDeliveries({ eventId: alerts[0]?.id ?? '' })
    expect(deliveries.map((d) => d.url)).toEqual([WEBHOOK_URL])

    // The seller revoked nothing: the connection is still active.
    expect(await stack.runtime.store.getConnection(connectionId)).toMatchObject({ status: 'active' })
  })

  it('a row sealed under a key the service lacks raises app.key_unavailable naming that key id', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    const elsewhere = new Keyring([{ id: 'k-elsewhere', key: randomBytes(32) }])
    for (const column of ['access_token', 'refresh_token'] as const) {
      writeColumn(
        stack,
        connectionId,
        `${column}_ciphertext`,
        sealToken(elsewhere, connectionId, column, `Atz-${column}-plaintext`),
      )
    }
    const answer = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(answer.status).toBe(500)
    expect((answer.json['error'] as { code: string }).code).toBe('key_unavailable')

    const alerts = await alertsFor(connectionId, 'app.key_unavailable')
    expect(alerts.map((a) => a.data)).toEqual([
      { code: 'key_unavailable', keyId: 'k-elsewhere', table: 'connections', column: 'access_token' },
    ])
    expect(JSON.stringify(alerts)).not.toContain('plaintext')
    expect((await stack.runtime.store.listDeliveries({ eventId: alerts[0]?.id ?? '' })).length).toBe(1)

    // What /readyz and serve's start-up warning use.
    expect(await storedKeyIdsMissingFrom(stack.runtime.store, stack.runtime.keyring)).toEqual(['k-elsewhere'])
  })

  it('serve warns at start that stored rows use a key id its keyring lacks', async () => {
    // Runs after the test above: the database holds rows under k-elsewhere.
    const child = spawnCli(['serve'], {
      env: { ...stack.env, PORT: '0', SP_CONNECT_HOST: '127.0.0.1', SP_CONNECT_REFRESHER: 'off' },
      timeoutMs: 60_000,
    })
    let output = ''
    const serving = new Promise<void>((resolve, reject) => {
      const onData = (chunk: string) => {
        output += chunk
        if (output.includes('sp-connect is serving')) resolve()
      }
      child.stdout.on('data', onData)
      child.stderr.on('data', onData)
      child.once('exit', () => reject(new Error(`serve exited before serving:\n${output}`)))
    })
    try {
      await serving
    } finally {
      child.kill('SIGTERM')
      if (child.exitCode === null) await once(child, 'exit')
    }
    const warning = output.split('\n').find((line) => line.includes('keys.missing'))
    expect(warning).toBeDefined()
    expect(warning).toContain('k-elsewhere')
    expect(warning).not.toContain('"k1"')
  })
})
