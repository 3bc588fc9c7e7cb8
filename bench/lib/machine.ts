/** What the benchmarks ran on, recorded beside every result. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, release, totalmem } from 'node:os'

export interface MachineInfo {
  /** Like `nproc`: the CPUs this process may use. */
  readonly nproc: number
  readonly memoryGiB: number
  /** `model name` from /proc/cpuinfo. */
  readonly cpuModel: string
  readonly node: string
  readonly platform: string
  readonly kernel: string
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'))
    return line?.split(':')[1]?.trim() ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

export function machineInfo(): MachineInfo {
  return {
    nproc: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    cpuModel: cpuModel(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    kernel: release(),
  }
}

/** The commit being measured and how many files under src/ differ from it; undefined outside a git work tree. */
export function sourceInfo(): { commit: string; uncommittedSrcFiles: number } | undefined {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    return {
      commit: git('rev-parse', '--short', 'HEAD').trim(),
      uncommittedSrcFiles: git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length,
    }
  } catch {
    return undefined
  }
}
