/**
 * Integrity alerts: a ciphertext the keyring cannot open becomes an `app.integrity_alert` (tampered) or
 * `app.key_unavailable` (missing key) event naming the row and key id, at most once per row and kind per
 * interval, in a bounded table. The clock is injected.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { IntegrityAlerts } from '../../src/core/crypto/integrity-alerts.ts'
import { type DecryptFailure, Keyring } from '../../src/core/crypto/keyring.ts'
import type { EventType } from '../../src/core/events/events.ts'
import { sealToken } from '../../src/core/tokens/sealed.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'

const HOUR = 60 * 60 * 1000
const silent = { debug() {}, info() {}, warn() {}, error() {} }

interface Recorded {
  type: EventType
  connectionId: string | null
  data: Record<string, unknown>
}

function setup(options: { intervalMs?: number; maxTracked?: number } = {}) {
  let now = 1_800_000_000_000
  const recorded: Recorded[] = []
  const sink = {
    async record(type: EventType, connectionId: string | null, data: Record<string, unknown> = {}) {
      recorded.push({ type, connectionId, data })
      return `evt_${recorded.length}`
    },
  }
  const alerts = new IntegrityAlerts({ ...options, events: sink }, { now: () => now, logger: silent })
  return {
    alerts,
    recorded,
    advance: (ms: number) => {
      now += ms
    },
  }
}

const failure = (code: DecryptFailure['code'], rowId = 'con_1', column = 'access_token'): DecryptFailure => ({
  code,
  keyId: 'k1',
  context: { table: 'connections', rowId, column },
})

describe('IntegrityAlerts', () => {
  it('records one event per connection and kind per hour', async () => {
    const { alerts, recorded, advance } = setup()
    alerts.report(failure('decryption_failed'))
    alerts.report(failure('decryption_failed'))
    // The other token of the same connection: the same incident.
    alerts.report(failure('decryption_failed', 'con_1', 'refresh_token'))
    alerts.report(failure('key_unavailable'))
    alerts.report(failure('decryption_failed', 'con_2'))
    await alerts.settled()
    expect(recorded.map((r) => [r.type, r.connectionId])).toEqual([
      ['app.integrity_alert', 'con_1'],
      ['app.key_unavailable', 'con_1'],
      ['app.integrity_alert', 'con_2'],
    ])
    advance(HOUR - 1)
    alerts.report(failure('decryption_failed'))
    await alerts.settled()
    expect(recorded).toHaveLength(3)
    advance(1)
    alerts.report(failure('decryption_failed'))
    await alerts.settled()
    expect(recorded).toHaveLength(4)
  })

  it('names the row, column and key id, never the ciphertext', async () => {
    const { alerts, recorded } = setup()
    alerts.report(failure('decryption_failed'))
    alerts.report({
      code: 'key_unavailable',
      keyId: 'old',
      context: { table: 'app_secrets', rowId: 'sec_1', column: 'secret_ciphertext' },
    })
    await alerts.settled()
    expect(recorded[0]?.data).toEqual({
      code: 'decryption_failed',
      keyId: 'k1',
      table: 'connections',
      column: 'access_token',
    })
    expect(recorded[1]).toEqual({
      type: 'app.key_unavailable',
      connectionId: null,
      data: {
        code: 'key_unavailable',
        keyId: 'old',
        table: 'app_secrets',
        column: 'secret_ciphertext',
        rowId: 'sec_1',
      },
    })
  })

  it('stays bounded: beyond maxTracked rows the oldest are forgotten', async () => {
    const { alerts, recorded } = setup({ maxTracked: 3 })
    for (const id of ['a', 'b', 'c', 'd']) alerts.report(failure('decryption_failed', id))
    // 'a' was forgotten to make room for 'd', so it alerts again; 'd' is still remembered.
    alerts.report(failure('decryption_failed', 'a'))
    alerts.report(failure('decryption_failed', 'd'))
    await alerts.settled()
    expect(recorded.map((r) => r.connectionId)).toEqual(['a', 'b', 'c', 'd', 'a'])
  })

  it('a failing event write is logged, not thrown', async () => {
    const errors: object[] = []
    const alerts = new IntegrityAlerts(
      { events: { record: () => Promise.reject(new Error('database is locked')) } },
      { now: () => 0, logger: { ...silent, error: (obj: object) => errors.push(obj) } },
    )
    alerts.report(failure('decryption_failed'))
    await alerts.settled()
    expect(errors).toHaveLength(1)
  })

  it('watches a keyring: tampered and missing-key ciphertexts alert, then still fail closed', async () => {
    const { alerts, recorded } = setup()
    const keyring = new Keyring([{ id: 'k1', key: randomBytes(32) }])
    const other = new Keyring([{ id: 'k9', key: randomBytes(32) }])
    alerts.watch(keyring)
    const sealed = sealToken(keyring, 'con_1', 'refresh_token', 'Atzr|secret-refresh-token')
    const parts = sealed.split('.')
    const body = Buffer.from(parts[4] ?? '', 'base64url')
    body[0] = (body[0] ?? 0) ^ 1
    const tampered = [...parts.slice(0, 4), body.toString('base64url')].join('.')
    const context = { table: 'connections', rowId: 'con_1', column: 'refresh_token' }
    expect(() => keyring.decrypt(tampered, context)).toThrow(
      expect.objectContaining({ code: 'decryption_failed' }),
    )
    const foreign = sealToken(other, 'con_1', 'refresh_token', 'Atzr|secret-refresh-token')
    let thrown: unknown
    try {
      keyring.decrypt(foreign, context)
    } catch (error) {
      thrown = error
    }
    expect(isSpConnectError(thrown, 'key_unavailable')).toBe(true)
    expect(keyring.decrypt(sealed, context)).toBe('Atzr|secret-refresh-token')
    await alerts.settled()
    expect(recorded).toEqual([
      {
        type: 'app.integrity_alert',
        connectionId: 'con_1',
        data: { code: 'decryption_failed', keyId: 'k1', table: 'connections', column: 'refresh_token' },
      },
      {
        type: 'app.key_unavailable',
        connectionId: 'con_1',
        data: { code: 'key_unavailable', keyId: 'k9', table: 'connections', column: 'refresh_token' },
      },
    ])
    expect(JSON.stringify(recorded)).not.toContain(parts[4])
  })
})
