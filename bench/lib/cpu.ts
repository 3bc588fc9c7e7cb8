/**
 * CPU time accounting from /proc, to tell how much other work ran on the machine during a scenario (other test
 * runs on a shared machine skew timings; counts are unaffected). Linux only; elsewhere everything reads 0.
 * Both files count in USER_HZ ticks (100 per second on Linux).
 */
import { readFileSync } from 'node:fs'

const TICKS_PER_SECOND = 100

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** CPU-seconds all CPUs of the machine spent busy since boot. */
export function machineBusySeconds(): number {
  const line = read('/proc/stat')?.split('\n')[0] ?? ''
  // cpu user nice system idle iowait irq softirq steal …
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
  const busy = [user, nice, system, irq, softirq, steal].reduce<number>((sum, v) => sum + (v ?? 0), 0)
  return busy / TICKS_PER_SECOND
}

/** CPU-seconds this process and its children that have exited (and were waited for) have used. */
export function ownCpuSeconds(): number {
  const stat = read('/proc/self/stat') ?? ''
  // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime, stime, cutime, cstime are fields 14–17, i.e. 11–14 after the state field (field 3).
  return fields.slice(11, 15).reduce((sum, v) => sum + Number(v || 0), 0) / TICKS_PER_SECOND
}
