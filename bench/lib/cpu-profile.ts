/**
 * Reads a V8 CPU profile (`node --cpu-prof`, a .cpuprofile file) and sums it up by frame: self time (where the
 * CPU was when sampled) and inclusive time for frames of src/ and hono (where our code spends it).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

interface ProfileNode {
  readonly id: number
  readonly callFrame: { functionName: string; url: string; lineNumber: number }
  readonly children?: number[]
}
interface CpuProfile {
  /** Microseconds on the monotonic clock (process.hrtime's, on Linux). */
  readonly startTime: number
  readonly nodes: ProfileNode[]
  readonly samples: number[]
  readonly timeDeltas: number[]
}

export interface ProfileFrame {
  /** `function path:line`, paths from node_modules/ or src/ on. */
  readonly frame: string
  /** Share of all sampled time, in %. */
  readonly percent: number
}

export interface ProfileSummary {
  readonly sampledSeconds: number
  /** Whether only the samples inside the window given were counted (false: the whole profile, start-up too). */
  readonly windowed: boolean
  readonly self: readonly ProfileFrame[]
  readonly inclusiveOurs: readonly ProfileFrame[]
  /** Self time summed per file (node_modules per package), to see which layer the time goes to. */
  readonly selfByFile: readonly ProfileFrame[]
}

/** The file of a frame: a package for node_modules, the path for src/, `node:…` or `(native)` otherwise. */
function fileOf(n: ProfileNode): string {
  const url = n.callFrame.url
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (pkg) return `node_modules/${pkg[1]}`
  const src = /\/(src\/.*|bench\/.*)$/.exec(url)
  if (src) return src[1] ?? url
  if (url.startsWith('node:')) return url.replace(/^node:internal\/deps\/([^/]+).*$/, 'node:internal/deps/$1')
  return url === '' ? n.callFrame.functionName || '(native)' : url
}

function label(n: ProfileNode): string {
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|src)\//, '$1/')
  return `${n.callFrame.functionName || '(anonymous)'}${url ? ` ${url}:${n.callFrame.lineNumber + 1}` : ''}`
}

/** A time window on the monotonic clock, as `process.hrtime.bigint()` reads it, in microseconds. */
export interface ProfileWindow {
  readonly fromUs: number
  readonly toUs: number
}

/** Microseconds on the monotonic clock, comparable with a V8 profile's timestamps on Linux. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/**
 * Sums up the one .cpuprofile file in `dir`, counting only samples inside `window` (so the process's start-up
 * is left out) when the profile has any there, else all of them.
 */
export function summariseProfileDir(dir: string, window?: ProfileWindow, top = 25): ProfileSummary {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error('no .cpuprofile written')
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const collect = (inWindow: (at: number) => boolean) => {
    const sums = new Map<number, number>()
    let at = profile.startTime
    profile.samples.forEach((id, i) => {
      const delta = profile.timeDeltas[i] ?? 0
      at += delta
      if (inWindow(at)) sums.set(id, (sums.get(id) ?? 0) + delta)
    })
    return sums
  }
  const windowedUs = window ? collect((at) => at >= window.fromUs && at <= window.toUs) : new Map()
  const windowed = windowedUs.size > 0
  const selfUs = windowed ? windowedUs : collect(() => true)
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const byFile = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (!node) continue
    byFile.set(fileOf(node), (byFile.get(fileOf(node)) ?? 0) + us)
    self.set(label(node), (self.get(label(node)) ?? 0) + us)
    // Each frame counts once per sample even when it recurses.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at)
      if (!n) break
      const l = label(n)
      if (seen.has(l)) continue
      seen.add(l)
      inclusive.set(l, (inclusive.get(l) ?? 0) + us)
    }
  }
  const rank = (map: Map<string, number>, keep: (l: string) => boolean): ProfileFrame[] =>
    [...map]
      .filter(([l]) => keep(l))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([frame, us]) => ({ frame, percent: Math.round((us / total) * 1000) / 10 }))
  return {
    sampledSeconds: Math.round(total / 1e4) / 100,
    windowed,
    self: rank(self, () => true),
    inclusiveOurs: rank(inclusive, (l) => / (src|node_modules\/(hono|@hono))\//.test(l)),
    selfByFile: rank(byFile, () => true),
  }
}
