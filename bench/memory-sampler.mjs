// Preloaded into a benchmarked CLI run (node --import ./bench/memory-sampler.mjs …) by the bench scripts when
// BENCH_MEMORY_SAMPLE=1: samples process.memoryUsage() every 20 ms and, at exit, writes the peak of each part
// (rss, V8 heap total and used, external, arrayBuffers) in MiB as one JSON line to the file in BENCH_MEMORY_FILE.
import { writeFileSync } from 'node:fs'

const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
const sample = () => {
  const m = process.memoryUsage()
  for (const key of Object.keys(peak)) peak[key] = Math.max(peak[key], m[key])
}
setInterval(sample, 20).unref()
process.on('exit', () => {
  sample()
  const mib = Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round(v / 1048576)]))
  if (process.env.BENCH_MEMORY_FILE) writeFileSync(process.env.BENCH_MEMORY_FILE, `${JSON.stringify(mib)}\n`)
})
