// Preloaded into a benchmarked CLI run (node --import ./bench/memory-sampler.mjs …) by the bench scripts when
// BENCH_MEMORY_SAMPLE=1: samples process.memoryUsage() every 20 ms and, at exit, writes the peak of each part
// (rss, V8 heap total and used, external, arrayBuffers) in MiB as one JSON line to the file in BENCH_MEMORY_FILE.
// With BENCH_MEMORY_TRACE (a file), every sample is also written there as a line: ms since start, then the parts in
// MiB, to see when the memory is taken (start-up, planning, the downloads).
import { writeFileSync } from 'node:fs'

const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
const trace = process.env.BENCH_MEMORY_TRACE ? ['ms rss heapTotal heapUsed external arrayBuffers'] : undefined
const t0 = performance.now()
const sample = () => {
  const m = process.memoryUsage()
  for (const key of Object.keys(peak)) peak[key] = Math.max(peak[key], m[key])
  trace?.push(
    [performance.now() - t0, ...Object.keys(peak).map((k) => m[k] / 1048576)]
      .map((v) => v.toFixed(0))
      .join(' '),
  )
}
setInterval(sample, 20).unref()
process.on('exit', () => {
  sample()
  const mib = Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round(v / 1048576)]))
  if (process.env.BENCH_MEMORY_FILE) writeFileSync(process.env.BENCH_MEMORY_FILE, `${JSON.stringify(mib)}\n`)
  if (trace) writeFileSync(process.env.BENCH_MEMORY_TRACE, `${trace.join('\n')}\n`)
})
