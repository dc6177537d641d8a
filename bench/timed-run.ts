import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { lstat, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * How the bundle benchmark runs each tool: a child process in its own process group, timed under /usr/bin/time -v
 * (wall, user+system CPU, peak RSS of the largest process) or, without it, by polling VmHWM in /proc, with the
 * allocated size of its output polled every 250 ms; and the `sync -f` that follows, timed as the tool's flush.
 */
const TIME = '/usr/bin/time'

export interface TimedResult {
  ok: boolean
  code: number
  wallMs: number
  cpuSec?: number
  /** The system (kernel) part of cpuSec. */
  sysSec?: number
  peakRssKiB?: number
  peakDiskBytes: number
  stderr: string
}

let current: ChildProcess | undefined

/** The child running now (killed with its process group on Ctrl-C). */
export const currentChild = () => current

/** Runs a command under /usr/bin/time -v (or VmHWM polling), polling the allocated size of `watchDir`. */
export async function timed(
  tool: string,
  command: string,
  args: string[],
  options: { watchDir: string; stdoutFile?: string; work: string; env?: Record<string, string> },
): Promise<TimedResult> {
  const useTime = existsSync(TIME)
  const timeFile = join(options.work, `${tool}.time`)
  const argv = useTime ? ['-v', '-o', timeFile, command, ...args] : args
  const child = spawn(useTime ? TIME : command, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, ...options.env },
  })
  current = child
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => {
    if (options.stdoutFile) stdout += d
  })
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d).slice(-20_000)
  })
  let peakDisk = 0
  let peakHwm = 0
  let polling = false
  const poll = setInterval(async () => {
    if (polling) return
    polling = true
    try {
      peakDisk = Math.max(peakDisk, await allocated(options.watchDir))
      if (!useTime && child.pid) peakHwm = Math.max(peakHwm, await treeHighWater(child.pid))
    } finally {
      polling = false
    }
  }, 250)
  const t0 = performance.now()
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)))
  const wallMs = performance.now() - t0
  clearInterval(poll)
  current = undefined
  peakDisk = Math.max(peakDisk, await allocated(options.watchDir))
  if (options.stdoutFile) writeFileSync(options.stdoutFile, stdout)
  let cpuSec: number | undefined
  let sysSec: number | undefined
  let peakRssKiB: number | undefined = peakHwm || undefined
  if (useTime && existsSync(timeFile)) {
    const text = readFileSync(timeFile, 'utf8')
    const num = (label: string) => Number(new RegExp(`${label}: ([\\d.]+)`).exec(text)?.[1] ?? Number.NaN)
    sysSec = num('System time \\(seconds\\)')
    cpuSec = num('User time \\(seconds\\)') + sysSec
    peakRssKiB = num('Maximum resident set size \\(kbytes\\)')
  }
  return { ok: code === 0, code, wallMs, cpuSec, sysSec, peakRssKiB, peakDiskBytes: peakDisk, stderr }
}

/** Allocated bytes under `path` (sparse files count what is written, as du does). */
async function allocated(path: string): Promise<number> {
  let info: Awaited<ReturnType<typeof lstat>>
  try {
    info = await lstat(path)
  } catch {
    return 0
  }
  if (!info.isDirectory()) return info.blocks * 512
  let total = info.blocks * 512
  let entries: string[] = []
  try {
    entries = await readdir(path)
  } catch {}
  for (const entry of entries) total += await allocated(join(path, entry))
  return total
}

/** The largest VmHWM (peak RSS) among `pid` and its descendants, in KiB (fallback without /usr/bin/time). */
async function treeHighWater(pid: number): Promise<number> {
  const parents = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  let peak = 0
  for (const [candidate] of parents) {
    let p: number | undefined = candidate
    while (p && p !== pid) p = parents.get(p)
    if (p !== pid) continue
    try {
      const status = await readFile(`/proc/${candidate}/status`, 'utf8')
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0))
    } catch {}
  }
  return peak
}

export async function run(
  command: string,
  args: string[],
): Promise<{ code: number; ms: number; stderr: string }> {
  const t0 = performance.now()
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  current = child
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d
  })
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)))
  current = undefined
  return { code, ms: performance.now() - t0, stderr }
}

/** Time to write back what is dirty on the output's filesystem (0 when the tool already fsynced). */
export const flush = async (dir: string) => (await run('sync', ['-f', dir])).ms
