/**
 * A unified diff of two texts (what `diff -u` prints), for `diff` to show how a stage's manifests changed. Lines are
 * matched by a longest common subsequence over the part between the common head and tail; when that part is too big
 * for the table (MAX_CELLS), the whole middle is shown as removed and added, which is still a correct diff.
 */
const MAX_CELLS = 4_000_000

type Op = { kind: ' ' | '-' | '+'; line: string }

export function unifiedDiff(a: string, b: string, labels: { a: string; b: string }, context = 3): string {
  if (a === b) return ''
  const left = splitLines(a)
  const right = splitLines(b)
  const ops = diffLines(left.lines, right.lines)
  const hunks = groupHunks(ops, context)
  const out = [`--- ${labels.a}`, `+++ ${labels.b}`]
  for (const hunk of hunks) {
    out.push(`@@ -${range(hunk.aStart, hunk.aCount)} +${range(hunk.bStart, hunk.bCount)} @@`)
    for (const op of hunk.ops) {
      if (op.line.endsWith(NO_NEWLINE))
        out.push(`${op.kind}${op.line.slice(0, -1)}`, '\\ No newline at end of file')
      else out.push(`${op.kind}${op.line}`)
    }
  }
  return `${out.join('\n')}\n`
}

/** Marks the last line of a text that does not end in a newline, so it never matches one that does. */
const NO_NEWLINE = '\u0000'

function splitLines(text: string): { lines: string[] } {
  if (text === '') return { lines: [] }
  if (text.endsWith('\n')) return { lines: text.slice(0, -1).split('\n') }
  const lines = text.split('\n')
  lines[lines.length - 1] += NO_NEWLINE
  return { lines }
}

function range(start: number, count: number): string {
  // Lines are numbered from 1; an empty range names the line before it.
  const first = count === 0 ? start : start + 1
  return count === 1 ? `${first}` : `${first},${count}`
}

export function diffLines(a: string[], b: string[]): Op[] {
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++
  const midA = a.slice(head, a.length - tail)
  const midB = b.slice(head, b.length - tail)
  const ops: Op[] = a.slice(0, head).map((line) => ({ kind: ' ', line }))
  if ((midA.length + 1) * (midB.length + 1) > MAX_CELLS) {
    for (const line of midA) ops.push({ kind: '-', line })
    for (const line of midB) ops.push({ kind: '+', line })
  } else ops.push(...lcsOps(midA, midB))
  for (const line of a.slice(a.length - tail)) ops.push({ kind: ' ', line })
  return ops
}

function lcsOps(a: string[], b: string[]): Op[] {
  const n = a.length
  const m = b.length
  const width = m + 1
  // suffix[i][j]: the LCS length of a[i..] and b[j..].
  const suffix = new Uint32Array((n + 1) * width)
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      suffix[i * width + j] =
        a[i] === b[j]
          ? suffix[(i + 1) * width + j + 1]! + 1
          : Math.max(suffix[(i + 1) * width + j]!, suffix[i * width + j + 1]!)
    }
  }
  const ops: Op[] = []
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i]! })
      i++
      j++
    } else if (suffix[(i + 1) * width + j]! >= suffix[i * width + j + 1]!)
      ops.push({ kind: '-', line: a[i++]! })
    else ops.push({ kind: '+', line: b[j++]! })
  }
  while (i < n) ops.push({ kind: '-', line: a[i++]! })
  while (j < m) ops.push({ kind: '+', line: b[j++]! })
  return ops
}

interface Hunk {
  aStart: number
  aCount: number
  bStart: number
  bCount: number
  ops: Op[]
}

function groupHunks(ops: Op[], context: number): Hunk[] {
  const changed = ops.flatMap((op, index) => (op.kind === ' ' ? [] : [index]))
  const hunks: Hunk[] = []
  let k = 0
  while (k < changed.length) {
    const start = Math.max(0, changed[k]! - context)
    let end = changed[k]!
    // Extend while the next change is close enough that their contexts touch.
    while (k + 1 < changed.length && changed[k + 1]! - end <= 2 * context) end = changed[++k]!
    k++
    const stop = Math.min(ops.length, end + context + 1)
    let aLine = 0
    let bLine = 0
    for (let x = 0; x < start; x++) {
      if (ops[x]!.kind !== '+') aLine++
      if (ops[x]!.kind !== '-') bLine++
    }
    const slice = ops.slice(start, stop)
    const aCount = slice.filter((op) => op.kind !== '+').length
    const bCount = slice.filter((op) => op.kind !== '-').length
    hunks.push({
      aStart: aLine,
      aCount,
      bStart: bLine,
      bCount,
      ops: slice,
    })
  }
  return hunks
}
