/**
 * Where each process's CPU time went, from a system-wide `perf` recording with call graphs: samples grouped by what
 * they were doing (sha256, socket reads, file writes, thread wake-ups, JavaScript, V8 parsing and compiling, garbage
 * collection, …), per process, for the processes with the most samples. Reads `perf script` output on stdin.
 *
 *   perf record -a -g -F 997 -o /tmp/perf.data &
 *   BENCH_GB=1 BENCH_TOOLS=bundle-base,crane BENCH_BUNDLE_BASELINE=$PWD/bin/run.js \
 *     BENCH_BUNDLE_BASE_ENV=NODE_OPTIONS=--perf-basic-prof node --import tsx bench/bundle-vs-skopeo.ts
 *   kill -INT %1
 *   perf script -i /tmp/perf.data -F comm,pid,tid,ip,sym,dso | node --import tsx bench/cpu-breakdown.ts
 *
 * (`--perf-basic-prof` names JavaScript frames for perf.) The benchmark's own process is a `node` too: it is the one
 * that ran before the others started (seeding the registry). Env: BENCH_TOP (processes to show, default 4).
 */
import { createInterface } from 'node:readline'

const TOP = Number(process.env.BENCH_TOP ?? 4)

/** The first category whose test matches the sample (its frames, leaf first). */
const CATEGORIES: [string, (leaf: string, stack: string) => boolean][] = [
  ['sha256', (leaf) => /sha256/i.test(leaf)],
  ['kernel: socket reads', (_, s) => /ksys_read|tcp_recvmsg/.test(s)],
  ['kernel: file writes', (_, s) => /ksys_write|ksys_pwrite|vfs_write|generic_perform_write/.test(s)],
  ['kernel: socket writes', (_, s) => /tcp_sendmsg|sys_sendto/.test(s)],
  ['kernel: fsync', (_, s) => /fsync|sync_file_range/.test(s)],
  ['futex (thread wake-ups and waits)', (_, s) => /futex/.test(s)],
  ['kernel: other', (leaf) => leaf.includes('[kernel')],
  ['memmove/memcpy (user)', (leaf) => /memmove|memcpy/.test(leaf)],
  ['V8 garbage collection', (_, s) => /Scavenge|MarkCompact|Sweeper|v8::internal::Heap::/.test(s)],
  ['V8 parse/compile', (_, s) => /Parser|Scanner|Compile|compiler::/.test(s)],
  ['JavaScript and V8 runtime', (leaf) => /^(JS:|Builtins_|v8::)/.test(leaf)],
  ['Go runtime', (leaf) => leaf.startsWith('runtime.')],
]

interface Process {
  comm: string
  samples: number
  categories: Map<string, number>
}

const processes = new Map<string, Process>()
let head: { comm: string; pid: string } | undefined
let frames: string[] = []

function endSample(): void {
  if (!head || !frames.length) return
  const leaf = frames[0]!
  const stack = frames.join(' < ')
  const category = CATEGORIES.find(([, test]) => test(leaf, stack))?.[0] ?? 'other (user)'
  const key = `${head.pid} ${head.comm}`
  const entry = processes.get(key) ?? { comm: head.comm, samples: 0, categories: new Map() }
  entry.samples += 1
  entry.categories.set(category, (entry.categories.get(category) ?? 0) + 1)
  processes.set(key, entry)
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.startsWith('\t') || line.startsWith(' '.repeat(8))) {
    const symbol = line.trim().split(' ').slice(1).join(' ')
    frames.push(symbol.replace(/\+0x[0-9a-f]+/, ''))
    continue
  }
  if (!line.trim()) continue
  endSample()
  // "comm pid/tid" (comm may hold spaces; pid/tid is the last word).
  const words = line.trim().split(/\s+/)
  const idWord = words.findLast((w) => /^\d+\/\d+$/.test(w))
  head = idWord
    ? { comm: words.slice(0, words.indexOf(idWord)).join(' '), pid: idWord.split('/')[0]! }
    : undefined
  frames = []
}
endSample()

const shown = [...processes.entries()]
  .filter(([key]) => !key.startsWith('0 '))
  .sort((a, b) => b[1].samples - a[1].samples)
  .slice(0, TOP)
for (const [key, entry] of shown) {
  process.stdout.write(`\n${key}: ${entry.samples} samples\n`)
  for (const [category, count] of [...entry.categories].sort((a, b) => b[1] - a[1])) {
    process.stdout.write(
      `  ${String(count).padStart(6)}  ${((100 * count) / entry.samples).toFixed(1).padStart(5)} %  ${category}\n`,
    )
  }
}
