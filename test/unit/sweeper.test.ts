import { describe, expect, it } from 'vitest'
import { Sweeper } from '../../src/core/maintenance/sweeper.ts'

class Lines {
  readonly lines: { level: string; obj: object; msg: string | undefined }[] = []
  debug = (obj: object, msg?: string) => this.lines.push({ level: 'debug', obj, msg })
  info = (obj: object, msg?: string) => this.lines.push({ level: 'info', obj, msg })
  warn = (obj: object, msg?: string) => this.lines.push({ level: 'warn', obj, msg })
  error = (obj: object, msg?: string) => this.lines.push({ level: 'error', obj, msg })
}

describe('Sweeper', () => {
  it('runs every sweep with the current time, logs counts only, and goes on after a failure', async () => {
    const logger = new Lines()
    const seen: [string, number][] = []
    const sweeper = new Sweeper(
      {
        intervalMs: 1000,
        sweeps: [
          {
            name: 'first',
            run: async (now) => {
              seen.push(['first', now])
              return 3
            },
          },
          {
            name: 'broken',
            run: async () => {
              throw new Error('secret-value in a message')
            },
          },
          {
            name: 'last',
            run: async (now) => {
              seen.push(['last', now])
              return 0
            },
          },
        ],
      },
      { now: () => 42, logger, random: () => 0.5 },
    )
    expect(await sweeper.runOnce()).toEqual([
      { name: 'first', deleted: 3 },
      { name: 'broken', deleted: undefined },
      { name: 'last', deleted: 0 },
    ])
    expect(seen).toEqual([
      ['first', 42],
      ['last', 42],
    ])
    const text = JSON.stringify(logger.lines)
    expect(text).not.toContain('secret-value')
    expect(logger.lines).toContainEqual({
      level: 'info',
      obj: { sweep: 'first', deleted: 3 },
      msg: 'swept expired rows',
    })
    expect(
      logger.lines.some((l) => l.level === 'warn' && (l.obj as { sweep?: string }).sweep === 'broken'),
    ).toBe(true)
  })

  it('sweeps on its schedule once started and stops cleanly', async () => {
    let runs = 0
    const sweeper = new Sweeper(
      { intervalMs: 5, sweeps: [{ name: 'count', run: async () => ++runs }] },
      { now: Date.now, logger: new Lines(), random: () => 0 },
    )
    sweeper.start()
    // Poll for the scheduled rounds rather than asserting on timing.
    for (let i = 0; i < 500 && runs < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    await sweeper.stop()
    expect(runs).toBeGreaterThanOrEqual(2)
    const after = runs
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(runs).toBe(after)
  })
})
