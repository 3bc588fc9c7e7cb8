import { describe, expect, it } from 'vitest'
import { parseNotification } from '../../src/core/secrets/notifications.ts'
import { isSpConnectError, SpConnectError } from '../../src/domain/errors.ts'

const SECRET = 'amzn1.oa2-cs.v1.8b6d0e5f-SECRET-VALUE-0042'
const CLIENT_ID = 'amzn1.application-oa2-client.6a1b2c3d4e5f'

/** Amazon's sample APPLICATION_OAUTH_CLIENT_NEW_SECRET message body (use-cases/lwa-rotation), values replaced. */
function newSecret(overrides: Record<string, unknown> = {}, inner: Record<string, unknown> = {}) {
  return {
    notificationVersion: '1.0',
    notificationType: 'APPLICATION_OAUTH_CLIENT_NEW_SECRET',
    payloadVersion: '2023-11-30',
    eventTime: '2024-01-10T22:09:17.456Z',
    payload: {
      applicationOAuthClientNewSecret: {
        clientId: CLIENT_ID,
        newClientSecret: SECRET,
        newClientSecretExpiryTime: '2024-07-08T22:09:17.198Z',
        oldClientSecretExpiryTime: '2024-01-17T22:09:17.180Z',
        ...inner,
      },
    },
    notificationMetadata: {
      applicationId: 'amzn1.sp.solution.6a1b2c3d',
      subscriptionId: '8594dc0e-78dc-4b05-83a4-a6a1b2c3d4e5',
      publishTime: '2024-01-10T22:09:18.706Z',
      notificationId: 'b0805eb9-78f7-49bb-ac0e-a1b2c3d4e5f6',
    },
    ...overrides,
  }
}

function expiry(inner: Record<string, unknown> = {}) {
  return {
    notificationVersion: '1.0',
    notificationType: 'APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY',
    payloadVersion: '2023-11-30',
    eventTime: '2024-01-10T02:15:10.045Z',
    payload: {
      applicationOAuthClientSecretExpiry: {
        clientId: CLIENT_ID,
        clientSecretExpiryTime: '2024-03-03T22:06:39.224Z',
        clientSecretExpiryReason: 'PERIODIC_ROTATION',
        ...inner,
      },
    },
    notificationMetadata: {
      applicationId: 'amzn1.sp.solution.6a1b2c3d',
      subscriptionId: 'a275c00d-260c-4000-8000-000000000f25',
      publishTime: '2024-01-10T02:15:14.269Z',
      notificationId: 'e7e27216-4970-477a-882c-e40000000dc',
    },
  }
}

function rejection(body: unknown): SpConnectError {
  try {
    parseNotification(body)
  } catch (error) {
    if (error instanceof SpConnectError) return error
    throw error
  }
  throw new Error('expected parseNotification to throw')
}

describe('parseNotification', () => {
  it("reads Amazon's APPLICATION_OAUTH_CLIENT_NEW_SECRET body", () => {
    expect(parseNotification(newSecret())).toEqual({
      kind: 'new_secret',
      notificationId: 'b0805eb9-78f7-49bb-ac0e-a1b2c3d4e5f6',
      eventTime: Date.parse('2024-01-10T22:09:17.456Z'),
      clientId: CLIENT_ID,
      newSecret: SECRET,
      newSecretExpiresAt: Date.parse('2024-07-08T22:09:17.198Z'),
      oldSecretExpiresAt: Date.parse('2024-01-17T22:09:17.180Z'),
    })
  })

  it("reads Amazon's APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY body", () => {
    expect(parseNotification(expiry())).toEqual({
      kind: 'secret_expiry',
      notificationId: 'e7e27216-4970-477a-882c-e40000000dc',
      eventTime: Date.parse('2024-01-10T02:15:10.045Z'),
      clientId: CLIENT_ID,
      expiresAt: Date.parse('2024-03-03T22:06:39.224Z'),
      reason: 'PERIODIC_ROTATION',
    })
    const noReason = expiry()
    delete (noReason.payload.applicationOAuthClientSecretExpiry as Record<string, unknown>)[
      'clientSecretExpiryReason'
    ]
    expect(parseNotification(noReason)).toMatchObject({ kind: 'secret_expiry', reason: null })
  })

  it('accepts times with an offset and ignores fields it does not know', () => {
    const parsed = parseNotification(
      newSecret(
        { extra: { nested: true } },
        { oldClientSecretExpiryTime: '2024-01-18T00:09:17+02:00', more: 1 },
      ),
    )
    expect(parsed).toMatchObject({
      kind: 'new_secret',
      oldSecretExpiresAt: Date.parse('2024-01-17T22:09:17Z'),
    })
  })

  it('works without metadata or event time (no idempotency key then)', () => {
    const body: Record<string, unknown> = newSecret()
    delete body['notificationMetadata']
    delete body['eventTime']
    expect(parseNotification(body)).toMatchObject({
      kind: 'new_secret',
      notificationId: null,
      eventTime: null,
    })
  })

  it('parses other notification types as `other`, so a shared queue can be acknowledged', () => {
    const parsed = parseNotification({
      notificationVersion: '1.0',
      notificationType: 'ACCOUNT_STATUS_CHANGED',
      payloadVersion: '1.0',
      eventTime: '2024-01-10T02:15:10.045Z',
      payload: { accountStatusChangeNotification: { accountStatus: 'NORMAL' } },
      notificationMetadata: { notificationId: 'n-1' },
    })
    expect(parsed).toEqual({
      kind: 'other',
      notificationType: 'ACCOUNT_STATUS_CHANGED',
      notificationId: 'n-1',
      eventTime: Date.parse('2024-01-10T02:15:10.045Z'),
    })
  })

  const bad: [string, unknown][] = [
    ['null', null],
    ['an array', [newSecret()]],
    ['a string', JSON.stringify(newSecret())],
    ['no notificationType', { ...newSecret(), notificationType: undefined }],
    ['a lower-case type', { ...newSecret(), notificationType: 'application_oauth_client_new_secret' }],
    ['no payload', { ...newSecret(), payload: undefined }],
    ['a bad event time', newSecret({ eventTime: 'yesterday' })],
    ['a missing new secret', newSecret({}, { newClientSecret: undefined })],
    ['an empty new secret', newSecret({}, { newClientSecret: '' })],
    ['a secret with spaces', newSecret({}, { newClientSecret: `${SECRET} x` })],
    ['a numeric secret', newSecret({}, { newClientSecret: 12345678 })],
    ['a missing client id', newSecret({}, { clientId: undefined })],
    ['a time without zone', newSecret({}, { oldClientSecretExpiryTime: '2024-01-17T22:09:17' })],
    ['a date only', newSecret({}, { newClientSecretExpiryTime: '2024-07-08' })],
    ['the wrong payload for the type', { ...newSecret(), payload: expiry().payload }],
    ['an expiry without its time', expiry({ clientSecretExpiryTime: undefined })],
  ]
  for (const [name, body] of bad) {
    it(`refuses ${name} with invalid_request, naming fields but never the secret`, () => {
      const error = rejection(body)
      expect(isSpConnectError(error, 'invalid_request')).toBe(true)
      expect(error.detail).toMatch(/^not a valid notification: /)
      expect(`${error.message} ${error.detail}`).not.toContain(SECRET)
      expect(`${error.message} ${error.detail}`).not.toContain('SECRET-VALUE')
    })
  }

  it('names the offending field', () => {
    expect(rejection(newSecret({}, { newClientSecret: 'short' })).detail).toContain(
      'payload.applicationOAuthClientNewSecret.newClientSecret',
    )
    expect(rejection({ payload: {} }).detail).toContain('notificationType')
  })
})
