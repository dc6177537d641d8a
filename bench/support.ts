import { execFileSync } from 'node:child_process'
import { cpus, freemem, loadavg, release, totalmem } from 'node:os'

/** Small helpers shared by the benchmark scripts: number formatting, a text table, the machine's description. */

export const MiB = 1 << 20
export const GiB = 1 << 30

export function mibPerSecond(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000)
}

export const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–')

export function formatSize(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`
  return `${(bytes / 1024).toFixed(0)} KiB`
}

export function median(values: number[]): number {
  if (!values.length) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** A plain-text (and Markdown-compatible) table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  // Columns of numbers are right-aligned, the rest left-aligned.
  const numeric = headers.map((_, i) =>
    rows.every((r) => /^[-+]?[\d.,]*\s?[%×]?(\s?(?:[KMG]i)?B)?$|^[?–]$/.test(r[i] ?? '')),
  )
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => `${'-'.repeat(w + 1)}${numeric[i] ? ':' : '-'}`).join('|')}|`
  return [line(headers), rule, ...rows.map(line)].join('\n')
}

export const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')

/** nproc, memory, kernel, node, the disk holding `dir`, and the load average right now. */
export function describeMachine(dir: string): string[] {
  let disk = ''
  try {
    disk = execFileSync('df', ['-h', '--output=source,fstype,size,avail', dir], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!
      .replace(/\s+/g, ' ')
  } catch {}
  return [
    `cpu: ${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    `memory: ${(totalmem() / GiB).toFixed(1)} GiB total, ${(freemem() / GiB).toFixed(1)} GiB free`,
    `kernel: ${release()}; node ${process.version}`,
    `disk of ${dir}: ${disk} (source fstype size avail)`,
    `load average (1/5/15 min): ${load()}`,
  ]
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

/**
 * The phase table of a dependency-closure benchmark: parse once (cold), index and closure cold then warm (the
 * median of the rounds after the first). Returns the table and the cold total.
 */
export function closurePhases(
  rounds: number,
  parse: { label: string; ms: number },
  index: { label: string; times: number[] },
  closure: { label: string; times: number[] },
): { table: string; coldTotal: number } {
  const warm = (values: number[]) => median(values.slice(1))
  const coldTotal = parse.ms + index.times[0]! + closure.times[0]!
  return {
    coldTotal,
    table: table(
      ['phase', 'cold ms', `warm ms (median of ${rounds})`],
      [
        [parse.label, fixed(parse.ms, 0), '–'],
        [index.label, fixed(index.times[0]!, 0), fixed(warm(index.times), 0)],
        [closure.label, fixed(closure.times[0]!, 0), fixed(warm(closure.times), 0)],
        ['total', fixed(coldTotal, 0), fixed(warm(index.times) + warm(closure.times), 0)],
      ],
    ),
  }
}
