/**
 * `Store` conformance, `EventStore`: the audit log and the webhook outbox. Every rule in store.ts's doc comments for these
 * methods, races included; test/store/conformance.ts runs it for each backend.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import type { DeliveryRecord, Store } from '../../src/store/store.ts'
import { defined, event, HOUR, MINUTE, newConnection, type StoreHarness, T0 } from './fixtures.ts'

export function eventConformance(h: StoreHarness): void {
  describe('EventStore', () => {
    let store: Store
    const another = () => h.another()

    beforeEach(() => {
      store = h.store
    })

    describe('events', () => {
      it('round-trips events and lists them newest first', async () => {
        const con = defined(await store.insertConnection(newConnection()))
        const e1 = {
          id: 'evt-1',
          type: 'connection.created',
          connectionId: con.id,
          data: { flow: 'website' },
          createdAt: T0,
        }
        const e2 = {
          id: 'evt-2',
          type: 'connection.refresh_failed',
          connectionId: con.id,
          data: { error: 'lwa_server_error', failureCount: 2, nested: { list: [1, 'two', null, true] } },
          createdAt: T0 + 1,
        }
        const e3 = { id: 'evt-3', type: 'app.alarm', connectionId: null, data: {}, createdAt: T0 + 2 }
        for (const e of [e1, e2, e3]) await store.appendEvent(e)
        expect(await store.listEvents()).toEqual([e3, e2, e1])
        expect(await store.listEvents({ connectionId: con.id })).toEqual([e2, e1])
        expect(await store.listEvents({ connectionId: con.id, limit: 1 })).toEqual([e2])
        expect(await store.listEvents({ connectionId: 'no-such-id' })).toEqual([])
        await expect(store.appendEvent(e1)).rejects.toThrow()
      })

      it('orders events at the same time by id and caps the page size', async () => {
        for (let i = 0; i < 105; i++) {
          await store.appendEvent({
            id: `evt-${String(i).padStart(3, '0')}`,
            type: 't',
            connectionId: null,
            data: { i },
            createdAt: T0,
          })
        }
        const page = await store.listEvents()
        expect(page).toHaveLength(100)
        expect(page[0]?.id).toBe('evt-104')
        expect(page[99]?.id).toBe('evt-005')
        expect(await store.listEvents({ limit: 5000 })).toHaveLength(105)
      })
    })

    describe('events: type filter and lookup', () => {
      it('filters by type, alone and with the connection, and finds one event by id', async () => {
        const a = event({ id: 'evt-a', type: 'connection.created', connectionId: 'con-1', createdAt: T0 })
        const b = event({
          id: 'evt-b',
          type: 'connection.refresh_failed',
          connectionId: 'con-1',
          createdAt: T0 + 1,
        })
        const c = event({
          id: 'evt-c',
          type: 'connection.created',
          connectionId: 'con-2',
          createdAt: T0 + 2,
        })
        for (const e of [a, b, c]) await store.appendEvent(e)
        expect(await store.listEvents({ type: 'connection.created' })).toEqual([c, a])
        expect(await store.listEvents({ type: 'connection.created', connectionId: 'con-1' })).toEqual([a])
        expect(await store.listEvents({ type: 'connection.created', limit: 1 })).toEqual([c])
        expect(await store.listEvents({ type: 'no.such_type' })).toEqual([])
        expect(await store.getEvent('evt-b')).toEqual(b)
        expect(await store.getEvent('no-such-event')).toBeUndefined()
      })
    })

    describe('webhook outbox', () => {
      const HOOK_A = 'https://app.example/hooks/a'
      const HOOK_B = 'https://app.example/hooks/b'
      const byUrl = (a: DeliveryRecord, b: DeliveryRecord) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0)
      const ids = (rows: readonly DeliveryRecord[]) => rows.map((r) => r.id)

      /** Appends one event at `createdAt` with one delivery per URL; returns the deliveries, ordered by URL. */
      async function deliveriesAt(
        createdAt: number,
        urls: readonly string[] = [HOOK_A],
      ): Promise<DeliveryRecord[]> {
        const e = event({ createdAt })
        await store.appendEvent(e, urls)
        return (await store.listDeliveries({ eventId: e.id })).sort(byUrl)
      }

      describe('appendEvent', () => {
        it('records the event with one pending delivery per URL, due at the event’s time', async () => {
          const e = event({ createdAt: T0 + 7 })
          await store.appendEvent(e, [HOOK_B, HOOK_A, HOOK_B])
          expect(await store.getEvent(e.id)).toEqual(e)
          const rows = (await store.listDeliveries({ eventId: e.id })).sort(byUrl)
          expect(rows).toEqual(
            [HOOK_A, HOOK_B].map((url) => ({
              id: expect.stringMatching(/^dlv_[A-Za-z0-9_-]{22}$/),
              eventId: e.id,
              url,
              status: 'pending',
              attempts: 0,
              nextAttemptAt: T0 + 7,
              lastStatusCode: null,
              lastError: null,
              leaseOwner: null,
              leaseUntil: null,
              createdAt: T0 + 7,
              updatedAt: T0 + 7,
              deliveredAt: null,
            })),
          )
          expect(new Set(ids(rows)).size).toBe(2)
        })

        it('records no deliveries without URLs', async () => {
          const e1 = event()
          const e2 = event()
          await store.appendEvent(e1)
          await store.appendEvent(e2, [])
          expect(await store.getEvent(e1.id)).toEqual(e1)
          expect(await store.getEvent(e2.id)).toEqual(e2)
          expect(await store.listDeliveries()).toEqual([])
        })

        it('records nothing when a delivery cannot be inserted', async () => {
          const e = event()
          // A NULL url violates NOT NULL on the second delivery row, after the event row went in.
          await expect(store.appendEvent(e, [HOOK_A, null as unknown as string])).rejects.toThrow()
          expect(await store.getEvent(e.id)).toBeUndefined()
          expect(await store.listEvents()).toEqual([])
          expect(await store.listDeliveries()).toEqual([])
          // The store is still usable afterwards.
          await store.appendEvent(e, [HOOK_A])
          expect(await store.listDeliveries({ eventId: e.id })).toHaveLength(1)
        })

        it('adds no deliveries when the event itself is refused', async () => {
          const e = event()
          await store.appendEvent(e, [HOOK_A])
          await expect(store.appendEvent({ ...e, type: 'other' }, [HOOK_B])).rejects.toThrow()
          const rows = await store.listDeliveries()
          expect(rows.map((r) => r.url)).toEqual([HOOK_A])
          expect(await store.getEvent(e.id)).toEqual(e)
        })

        it('appends concurrently from two handles while a third claims, each delivery claimed once', async () => {
          const second = await another()
          const third = await another()
          const writers = [store, second ?? store]
          const claimer = third ?? store
          let appending = true
          const appends = Promise.all(
            Array.from({ length: 30 }, (_, i) =>
              writers[i % 2]?.appendEvent(event({ createdAt: T0 + i }), [HOOK_A, HOOK_B]),
            ),
          ).finally(() => {
            appending = false
          })
          const claim = () => claimer.claimDueDeliveries(T0 + HOUR, 'claimer', T0 + 2 * HOUR, 7)
          // Claims interleave with the appends' transactions, then drain whatever is left.
          const claimed: DeliveryRecord[] = []
          while (appending) claimed.push(...(await claim()))
          await appends
          for (let more = await claim(); more.length > 0; more = await claim()) claimed.push(...more)
          expect(claimed).toHaveLength(60)
          expect(new Set(ids(claimed)).size).toBe(60)
          expect(await store.listEvents({ limit: 1000 })).toHaveLength(30)
        })
      })

      describe('pendingDeliveryStats', () => {
        it('counts pending deliveries and gives the oldest one’s creation time', async () => {
          expect(await store.pendingDeliveryStats()).toEqual({ pending: 0, oldestCreatedAt: null })
          await deliveriesAt(T0 + 5, [HOOK_A, HOOK_B])
          await deliveriesAt(T0 + 9)
          expect(await store.pendingDeliveryStats()).toEqual({ pending: 3, oldestCreatedAt: T0 + 5 })
          // One of the two from T0 + 5 delivered: the other still makes T0 + 5 the oldest.
          const [claimed] = await store.claimDueDeliveries(T0 + 5, 'w', T0 + HOUR, 1)
          expect(claimed?.createdAt).toBe(T0 + 5)
          await store.completeDelivery(defined(claimed).id, 'w', { ok: true, statusCode: 200, now: T0 + 6 })
          expect(await store.pendingDeliveryStats()).toEqual({ pending: 2, oldestCreatedAt: T0 + 5 })
        })
      })

      describe('claimDueDeliveries', () => {
        it('claims pending deliveries due at or before now, oldest due first, setting the lease', async () => {
          const [late] = await deliveriesAt(T0 + 20)
          const [due] = await deliveriesAt(T0 + 10)
          const [early] = await deliveriesAt(T0)
          const claimed = await store.claimDueDeliveries(T0 + 10, 'worker-1', T0 + MINUTE, 10)
          expect(ids(claimed)).toEqual([defined(early).id, defined(due).id])
          expect(claimed[0]).toEqual({ ...early, leaseOwner: 'worker-1', leaseUntil: T0 + MINUTE })
          expect((await store.listDeliveries({ eventId: defined(due).eventId }))[0]).toEqual(claimed[1])
          expect((await store.listDeliveries({ eventId: defined(late).eventId }))[0]).toEqual(late)
        })

        it('claims up to the limit, oldest first, then id', async () => {
          const rows: DeliveryRecord[] = []
          for (const at of [T0 + 4, T0 + 1, T0 + 3, T0 + 1, T0 + 2]) rows.push(...(await deliveriesAt(at)))
          const expected = [...rows]
            .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1))
            .map((r) => r.id)
          expect(ids(await store.claimDueDeliveries(T0 + 10, 'w', T0 + MINUTE, 2))).toEqual(
            expected.slice(0, 2),
          )
          expect(ids(await store.claimDueDeliveries(T0 + 10, 'w', T0 + MINUTE, 2))).toEqual(
            expected.slice(2, 4),
          )
          expect(ids(await store.claimDueDeliveries(T0 + 10, 'w', T0 + MINUTE, 2))).toEqual(expected.slice(4))
          expect(await store.claimDueDeliveries(T0 + 10, 'w', T0 + MINUTE, 2)).toEqual([])
        })

        it('skips held leases, even its own, and reclaims expired ones exactly at lease_until', async () => {
          const [d] = await deliveriesAt(T0)
          const id = defined(d).id
          expect(ids(await store.claimDueDeliveries(T0, 'worker-1', T0 + MINUTE, 10))).toEqual([id])
          expect(await store.claimDueDeliveries(T0 + 1, 'worker-2', T0 + 2 * MINUTE, 10)).toEqual([])
          expect(await store.claimDueDeliveries(T0 + 1, 'worker-1', T0 + 2 * MINUTE, 10)).toEqual([])
          expect(await store.claimDueDeliveries(T0 + MINUTE - 1, 'worker-2', T0 + 2 * MINUTE, 10)).toEqual([])
          const taken = await store.claimDueDeliveries(T0 + MINUTE, 'worker-2', T0 + 3 * MINUTE, 10)
          expect(taken).toEqual([{ ...d, leaseOwner: 'worker-2', leaseUntil: T0 + 3 * MINUTE }])
        })

        it('skips delivered and failed deliveries', async () => {
          const [ok, gaveUp] = await deliveriesAt(T0, [HOOK_A, HOOK_B])
          await store.claimDueDeliveries(T0, 'w', T0 + MINUTE, 10)
          await store.completeDelivery(defined(ok).id, 'w', { ok: true, statusCode: 204, now: T0 + 1 })
          await store.completeDelivery(defined(gaveUp).id, 'w', {
            ok: false,
            statusCode: 410,
            error: 'http_410',
            nextAttemptAt: null,
            now: T0 + 1,
          })
          expect(await store.claimDueDeliveries(T0 + HOUR, 'w2', T0 + 2 * HOUR, 10)).toEqual([])
        })

        it('gives each delivery to exactly one of 20 concurrent claimers', async () => {
          for (let i = 0; i < 10; i++)
            await deliveriesAt(T0 + i, [HOOK_A, HOOK_B, 'https://app.example/hooks/c'])
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              store.claimDueDeliveries(T0 + HOUR, `worker-${i}`, T0 + 2 * HOUR, 2),
            ),
          )
          const all = results.flat()
          expect(all).toHaveLength(30)
          expect(new Set(ids(all)).size).toBe(30)
          results.forEach((rows, i) => {
            for (const r of rows) expect(r.leaseOwner).toBe(`worker-${i}`)
          })
          const stored = await store.listDeliveries({ limit: 100 })
          const ownerOf = new Map(all.map((r) => [r.id, r.leaseOwner]))
          for (const r of stored) expect(r.leaseOwner).toBe(ownerOf.get(r.id))
        })

        it('gives each delivery to exactly one claimer across two handles', async () => {
          const second = await another()
          if (second === undefined) return
          for (let round = 0; round < 5; round++) {
            const now = T0 + round * HOUR
            for (let i = 0; i < 8; i++) await deliveriesAt(now, [HOOK_A, HOOK_B])
            const results = await Promise.all(
              Array.from({ length: 10 }, (_, i) =>
                // Leases outlast every round, so each round can only claim its own deliveries.
                (i % 2 === 0 ? store : second).claimDueDeliveries(now, `r${round}-w${i}`, T0 + 100 * HOUR, 3),
              ),
            )
            const all = results.flat()
            expect(all).toHaveLength(16)
            expect(new Set(ids(all)).size).toBe(16)
            for (const r of all) {
              const stored = (await second.listDeliveries({ eventId: r.eventId })).find((x) => x.id === r.id)
              expect(stored?.leaseOwner).toBe(r.leaseOwner)
            }
          }
        })
      })

      describe('completeDelivery', () => {
        it('marks a success delivered, counts the attempt, clears the error and the lease', async () => {
          const [d] = await deliveriesAt(T0)
          const id = defined(d).id
          await store.claimDueDeliveries(T0, 'w1', T0 + MINUTE, 10)
          const retry = defined(
            await store.completeDelivery(id, 'w1', {
              ok: false,
              statusCode: 503,
              error: 'http_503',
              nextAttemptAt: T0 + 5 * MINUTE,
              now: T0 + 1,
            }),
          )
          expect(retry).toEqual({
            ...d,
            status: 'pending',
            attempts: 1,
            nextAttemptAt: T0 + 5 * MINUTE,
            lastStatusCode: 503,
            lastError: 'http_503',
            leaseOwner: null,
            leaseUntil: null,
            updatedAt: T0 + 1,
          })
          // Backoff: not due before nextAttemptAt, due at it.
          expect(await store.claimDueDeliveries(T0 + 5 * MINUTE - 1, 'w2', T0 + 6 * MINUTE, 10)).toEqual([])
          expect(ids(await store.claimDueDeliveries(T0 + 5 * MINUTE, 'w2', T0 + 6 * MINUTE, 10))).toEqual([
            id,
          ])
          const done = defined(
            await store.completeDelivery(id, 'w2', { ok: true, statusCode: 200, now: T0 + 5 * MINUTE + 3 }),
          )
          expect(done).toEqual({
            ...retry,
            status: 'delivered',
            attempts: 2,
            lastStatusCode: 200,
            lastError: null,
            deliveredAt: T0 + 5 * MINUTE + 3,
            updatedAt: T0 + 5 * MINUTE + 3,
          })
          expect((await store.listDeliveries({ eventId: done.eventId }))[0]).toEqual(done)
          expect(await store.claimDueDeliveries(T0 + 10 * HOUR, 'w3', T0 + 11 * HOUR, 10)).toEqual([])
        })

        it('gives up with status failed when there is no next attempt', async () => {
          const [d] = await deliveriesAt(T0)
          await store.claimDueDeliveries(T0, 'w1', T0 + MINUTE, 10)
          const failed = defined(
            await store.completeDelivery(defined(d).id, 'w1', {
              ok: false,
              statusCode: null,
              error: 'connection_refused',
              nextAttemptAt: null,
              now: T0 + 2,
            }),
          )
          expect(failed).toEqual({
            ...d,
            status: 'failed',
            attempts: 1,
            lastStatusCode: null,
            lastError: 'connection_refused',
            updatedAt: T0 + 2,
          })
          expect(await store.listDeliveries({ status: 'failed' })).toEqual([failed])
          expect(await store.claimDueDeliveries(T0 + HOUR, 'w2', T0 + 2 * HOUR, 10)).toEqual([])
        })

        it('accepts the result only from the lease owner, once', async () => {
          const [d] = await deliveriesAt(T0)
          const id = defined(d).id
          const success = { ok: true, statusCode: 200, now: T0 + 1 } as const
          // Not claimed: nobody holds it.
          expect(await store.completeDelivery(id, 'w1', success)).toBeUndefined()
          const [claimed] = await store.claimDueDeliveries(T0, 'w1', T0 + MINUTE, 10)
          expect(await store.completeDelivery(id, 'w2', success)).toBeUndefined()
          expect((await store.listDeliveries({ eventId: defined(d).eventId }))[0]).toEqual(claimed)
          // w1's lease runs out and w2 claims it: w1's late result is refused, w2's accepted.
          await store.claimDueDeliveries(T0 + MINUTE, 'w2', T0 + 2 * MINUTE, 10)
          expect(await store.completeDelivery(id, 'w1', success)).toBeUndefined()
          const done = defined(await store.completeDelivery(id, 'w2', success))
          expect(done.attempts).toBe(1)
          expect(await store.completeDelivery(id, 'w2', success)).toBeUndefined()
          expect(await store.completeDelivery('no-such-delivery', 'w2', success)).toBeUndefined()
        })

        it('still accepts the owner’s result after its lease ran out if nobody else claimed it', async () => {
          const [d] = await deliveriesAt(T0)
          await store.claimDueDeliveries(T0, 'w1', T0 + MINUTE, 10)
          const done = await store.completeDelivery(defined(d).id, 'w1', {
            ok: true,
            statusCode: 200,
            now: T0 + HOUR,
          })
          expect(done?.status).toBe('delivered')
        })

        it('truncates the error to 300 characters without splitting a character', async () => {
          const [a, b] = await deliveriesAt(T0, [HOOK_A, HOOK_B])
          await store.claimDueDeliveries(T0, 'w', T0 + MINUTE, 10)
          const failure = (error: string) =>
            ({ ok: false, statusCode: 500, error, nextAttemptAt: T0 + HOUR, now: T0 + 1 }) as const
          const long = defined(await store.completeDelivery(defined(a).id, 'w', failure('x'.repeat(301))))
          expect(long.lastError).toBe('x'.repeat(300))
          const emoji = defined(await store.completeDelivery(defined(b).id, 'w', failure('😀'.repeat(400))))
          expect(emoji.lastError).toBe('😀'.repeat(300))
        })
      })

      describe('listDeliveries', () => {
        it('filters by event and status, newest first, up to the limit', async () => {
          const first = await deliveriesAt(T0, [HOOK_A, HOOK_B])
          const second = await deliveriesAt(T0 + 1, [HOOK_A])
          await store.claimDueDeliveries(T0, 'w', T0 + MINUTE, 1)
          const [claimed] = first.filter(
            (d) => d.id === [...first].sort((x, y) => (x.id < y.id ? -1 : 1))[0]?.id,
          )
          await store.completeDelivery(defined(claimed).id, 'w', { ok: true, statusCode: 200, now: T0 + 2 })
          const all = await store.listDeliveries()
          expect(all).toHaveLength(3)
          expect(all[0]?.id).toBe(second[0]?.id)
          expect((await store.listDeliveries({ limit: 1 })).map((d) => d.id)).toEqual([second[0]?.id])
          expect(ids(await store.listDeliveries({ status: 'delivered' }))).toEqual([defined(claimed).id])
          const pendingOfFirst = await store.listDeliveries({
            eventId: defined(first[0]).eventId,
            status: 'pending',
          })
          expect(pendingOfFirst).toHaveLength(1)
          expect(pendingOfFirst[0]?.id).not.toBe(defined(claimed).id)
          expect(await store.listDeliveries({ eventId: 'no-such-event' })).toEqual([])
          expect(await store.listDeliveries({ status: 'failed' })).toEqual([])
        })
      })
    })
  })
}
