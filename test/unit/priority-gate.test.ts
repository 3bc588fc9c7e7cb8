import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PriorityGate } from '../../src/core/tokens/priority-gate.ts'

describe('PriorityGate', () => {
  it('never lets more than the capacity through, and serves on-demand waiters before background ones', async () => {
    const gate = new PriorityGate(2)
    const order: string[] = []
    const a = await gate.acquire('background')
    const b = await gate.acquire('background')
    const bg1 = gate.acquire('background').then((r) => {
      order.push('bg1')
      return r
    })
    const bg2 = gate.acquire('background').then((r) => {
      order.push('bg2')
      return r
    })
    const od1 = gate.acquire('on_demand').then((r) => {
      order.push('od1')
      return r
    })
    expect(gate.inUse).toBe(2)
    expect(gate.onDemandWaiting).toBe(1)
    a()
    a() // releasing twice frees one slot only
    const first = await od1
    expect(order).toEqual(['od1'])
    b()
    first()
    const rest = await Promise.all([bg1, bg2])
    expect(order).toEqual(['od1', 'bg1', 'bg2'])
    for (const release of rest) release()
    expect(gate.inUse).toBe(0)
  })

  it('keeps the in-use count within bounds under any interleaving (fast-check scheduler)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }),
        async (s, kinds) => {
          const gate = new PriorityGate(3)
          let running = 0
          let peak = 0
          const tasks = kinds.map(async (onDemand) => {
            const release = await gate.acquire(onDemand ? 'on_demand' : 'background')
            running++
            peak = Math.max(peak, running)
            await s.schedule(Promise.resolve())
            running--
            release()
          })
          await s.waitFor(Promise.all(tasks))
          expect(peak).toBeLessThanOrEqual(3)
          expect(gate.inUse).toBe(0)
        },
      ),
      { numRuns: 200 },
    )
  })
})
