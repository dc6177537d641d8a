/**
 * Benchmark (not a test): peak RSS and wall time of `astrago-airgap push -j 8` of a synthetic bundle into an empty
 * distribution v3 registry on loopback, each round into a fresh registry. With BENCH_PUSH_BASELINE (the bin/run.js of
 * another build of the CLI) that build runs as `push-base` in the same rounds, alternating, so the two are compared
 * under the same load, and so do the peers (bench/push-peers.ts): skopeo and crane pushing the same images, one by one,
 * from the bundle's OCI layout extracted to disk. Each run is timed under /usr/bin/time -v (peak RSS, CPU). Prints
 * medians, and each tool's wall time over push's.
 * Knobs: BENCH_GB (1), BENCH_IMAGES (20), BENCH_ROUNDS (3), BENCH_CONCURRENCY (8), BENCH_DIR, BENCH_MEMORY_SAMPLE,
 * BENCH_PEERS (skopeo,crane; empty for none).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRegistry } from '../test/support/registry.js'
import { makeBenchSet, ROOT } from './bench-set.js'
import { writePeerScripts } from './push-peers.js'
import { describeMachine, fixed, formatSize, load, log, median, table } from './support.js'

const GB = Number(process.env.BENCH_GB ?? 1)
const IMAGES = Number(process.env.BENCH_IMAGES ?? 20)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const BASELINE = process.env.BENCH_PUSH_BASELINE
const PEERS = (process.env.BENCH_PEERS ?? 'skopeo,crane')
  .split(',')
  .filter((p) => p === 'skopeo' || p === 'crane')
const TIME = '/usr/bin/time'
/** Also print the peaks of process.memoryUsage() (heap, external, array buffers) of each run: memory-sampler.mjs. */
const SAMPLE = process.env.BENCH_MEMORY_SAMPLE === '1'

interface Sample {
  wallS: number
  cpuS: number
  rssMiB: number
}

async function timedPush(cli: string, bundle: string, work: string, tag: string): Promise<Sample> {
  const registry = await startRegistry({ flavor: 'distribution-v3' })
  try {
    const timeFile = join(work, `${tag}.time`)
    const memoryFile = join(work, `${tag}.memory`)
    const sampler = SAMPLE ? ['--import', join(import.meta.dirname, 'memory-sampler.mjs')] : []
    const peer = cli.endsWith('.sh')
    const args = peer
      ? ['-v', '-o', timeFile, 'bash', cli, registry.host]
      : [
          '-v',
          '-o',
          timeFile,
          process.execPath,
          ...sampler,
          cli,
          'push',
          bundle,
          '--registry',
          `http://${registry.host}`,
        ]
    if (!peer) args.push('-j', String(CONCURRENCY), '--json')
    const t0 = performance.now()
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn(TIME, args, {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, BENCH_MEMORY_FILE: memoryFile },
      })
      let err = ''
      child.stderr.on('data', (d: Buffer) => {
        err = (err + d).slice(-4000)
      })
      child.on('close', (c) => resolve({ code: c ?? 1, stderr: err }))
    })
    const wallS = (performance.now() - t0) / 1000
    if (code !== 0) throw new Error(`${tag}: push exited ${code}: ${stderr}`)
    const text = readFileSync(timeFile, 'utf8')
    const num = (label: string) => Number(new RegExp(`${label}: ([\\d.]+)`).exec(text)?.[1] ?? Number.NaN)
    if (SAMPLE && !peer) log(`${tag} peaks (MiB): ${readFileSync(memoryFile, 'utf8').trim()}`)
    return {
      wallS,
      cpuS: num('User time \\(seconds\\)') + num('System time \\(seconds\\)'),
      rssMiB: num('Maximum resident set size \\(kbytes\\)') / 1024,
    }
  } finally {
    await registry.stop()
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'astrago-bench-push-'))
  try {
    const { bundle, total } = await makeBenchSet(work, GB, IMAGES)
    const tools: [string, string][] = [['push', join(ROOT, 'bin', 'run.js')]]
    if (BASELINE) tools.push(['push-base', BASELINE])
    if (PEERS.length) {
      const scripts = writePeerScripts(bundle, work)
      for (const peer of PEERS) tools.push([peer, scripts[peer as 'skopeo' | 'crane']])
    }
    const samples = new Map<string, Sample[]>()
    for (let round = 0; round < ROUNDS; round++) {
      const order = tools.map((_, i) => tools[(i + round) % tools.length]!)
      for (const [tag, cli] of order) {
        const s = await timedPush(cli, bundle, work, tag)
        samples.set(tag, [...(samples.get(tag) ?? []), s])
        log(
          `round ${round + 1} ${tag}: ${fixed(s.wallS, 2)} s, CPU ${fixed(s.cpuS, 1)} s, peak RSS ${fixed(s.rssMiB, 0)} MiB (load ${load()})`,
        )
      }
    }
    console.log(`\n## push -j ${CONCURRENCY}: ${formatSize(total)} of blobs, ${ROUNDS} rounds, medians\n`)
    for (const line of describeMachine(work)) console.log(`- ${line}`)
    console.log('')
    console.log(
      table(
        ['tool', 'wall s', 'wall / push', 'CPU s', 'peak RSS MiB', 'peak RSS per round'],
        tools.map(([tag]) => {
          const s = samples.get(tag)!
          const push = median(samples.get('push')!.map((x) => x.wallS))
          return [
            tag,
            fixed(median(s.map((x) => x.wallS)), 2),
            `${fixed(median(s.map((x) => x.wallS)) / push, 2)}×`,
            fixed(median(s.map((x) => x.cpuS)), 1),
            fixed(median(s.map((x) => x.rssMiB)), 0),
            s.map((x) => fixed(x.rssMiB, 0)).join(' / '),
          ]
        }),
      ),
    )
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
