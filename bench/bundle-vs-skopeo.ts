/**
 * `astrago-airgap bundle` against skopeo, crane and the machine's own limits, on one synthetic image set.
 *
 *   scripts/setup                                   # once: tools, npm packages, the built CLI (dist/)
 *   node --import tsx bench/bundle-vs-skopeo.ts     # BENCH_GB=3 BENCH_IMAGES=40 by default
 *
 * Seeds a distribution v3 registry (test/support) with BENCH_IMAGES single-platform OCI images holding about
 * BENCH_GB GiB of unique, uncompressed layers: each image has one base layer shared with a tenth of the set (so a
 * third of all layer references are shared) and two layers of its own. Then, one after another on the same output
 * disk:
 *   dd      sequential write of BENCH_DD_MB MiB (default 2048) with conv=fdatasync: the disk's physical limit;
 *   raw     every unique blob fetched by curl, 8 transfers in parallel, into files: the practical limit of the
 *           source + loopback + disk, with no verification, no layout and no bookkeeping;
 *   bundle  the built CLI (node bin/run.js bundle) with a generated definition, --mirror to the registry, -j 8;
 *   bundle-base (only when listed) the same with another build's bin/run.js (BENCH_BUNDLE_BASELINE), its environment
 *           plus BENCH_BUNDLE_BASE_ENV (NAME=VALUE,…): a change measured against the build before it, in one run;
 *   crane   one `crane pull --format oci` of every image into one OCI layout (go-containerregistry; built into the
 *           tools cache by scripts/bench-setup), pulling the layers of each image in parallel;
 *   skopeo  `skopeo copy` of every image into one OCI layout (skopeo 1.9's `sync` cannot write OCI layouts), one
 *           image after another as a script would; blobs already in the layout are not fetched again;
 *   skopeo-sync (only when listed in BENCH_TOOLS) `skopeo sync --src yaml --dest dir`: one process, no dedup.
 * Each run is timed with /usr/bin/time -v (wall, CPU, peak RSS of the largest process) or, without it, by polling
 * VmHWM in /proc; peak disk is the allocated size of its output, polled every 250 ms. `flush` is the time a
 * following `sync -f` takes to put what the tool left in the page cache on disk (bundle fsyncs itself; curl and
 * skopeo do not); MiB/s counts the unique blob bytes over wall + flush.
 *
 * Env: BENCH_GB, BENCH_IMAGES, BENCH_TOOLS (comma list, default dd,raw,bundle,skopeo; a tool may be listed twice),
 * BENCH_DIR (where outputs go, default the temp folder), BENCH_DD_MB, BENCH_CONCURRENCY (bundle -j, default 8),
 * BENCH_RAW_PARALLEL (curl transfers, default 8), BENCH_CPU_PROF=1 (a .cpuprofile of each bundle run, kept in
 * BENCH_DIR), BENCH_MEMORY_SAMPLE=1 (the peaks of process.memoryUsage() of each bundle run, from memory-sampler.mjs;
 * BENCH_MEMORY_TRACE=<file> also writes every sample). With several samples of a tool the targets use medians; they
 * are printed against skopeo, raw and crane (wall + flush, CPU, peak RSS) as far as those ran. Everything it creates
 * is removed at the end, also on Ctrl-C.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type PushedImage, pushImage } from '../test/support/images.js'
import { registryFetch, startRegistry, type TestRegistry } from '../test/support/registry.js'
import { findTool } from '../test/support/tools.js'
import {
  describeMachine,
  fixed,
  formatSize,
  GiB,
  load,
  log,
  MiB,
  median,
  mibPerSecond,
  table,
} from './support.js'
import { currentChild, flush, run, type TimedResult, timed } from './timed-run.js'

const ROOT = join(import.meta.dirname, '..')
const GB = Number(process.env.BENCH_GB ?? 3)
const IMAGES = Number(process.env.BENCH_IMAGES ?? 40)
const TOOLS = (process.env.BENCH_TOOLS ?? 'dd,raw,bundle,skopeo').split(',').map((t) => t.trim())
const DD_MB = Number(process.env.BENCH_DD_MB ?? 2048)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const RAW_PARALLEL = Number(process.env.BENCH_RAW_PARALLEL ?? 8)
const CPU_PROF = process.env.BENCH_CPU_PROF === '1'
/** Another build's bin/run.js, run as `bundle-base` when listed in BENCH_TOOLS (same run, same registry, same disk). */
const BASELINE = process.env.BENCH_BUNDLE_BASELINE
/** NAME=VALUE,… added to the environment of the bundle-base runs (e.g. the same build with a Node option). */
const BASE_ENV = Object.fromEntries(
  (process.env.BENCH_BUNDLE_BASE_ENV ?? '')
    .split(',')
    .filter(Boolean)
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
)
/** Preload bench/memory-sampler.mjs into the bundle runs and print the peaks of process.memoryUsage(). */
const SAMPLE = process.env.BENCH_MEMORY_SAMPLE === '1'
const KNOWN_TOOLS = ['dd', 'raw', 'bundle', 'bundle-base', 'crane', 'skopeo', 'skopeo-sync']

interface RunResult {
  tool: string
  ok: boolean
  wallMs: number
  flushMs: number
  cpuSec?: number
  sysSec?: number
  peakRssKiB?: number
  peakDiskBytes: number
  note: string
  load: string
}

/** What the timed run measured, as a RunResult carries it. */
const measured = ({ wallMs, cpuSec, sysSec, peakRssKiB, peakDiskBytes }: TimedResult) => ({
  wallMs,
  cpuSec,
  sysSec,
  peakRssKiB,
  peakDiskBytes,
})

const cleanups: (() => Promise<void> | void)[] = []

interface BenchImage {
  repository: string
  tag: string
  reference: string
  pushed: PushedImage
  configDigest: string
  configSize: number
}

async function seed(registry: TestRegistry): Promise<BenchImage[]> {
  const bases = Math.max(1, Math.round(IMAGES / 10))
  // Per image: base (2 units, shared) + own layers of 1.5 and 0.5 units (± 25 %); total unique ≈ BENCH_GB GiB.
  const unit = (GB * GiB) / (2 * bases + 2 * IMAGES)
  const vary = (i: number) => 0.75 + 0.5 * ((i * 0.6180339887) % 1)
  const baseDigests = new Map<number, { digest: string; from: string }>()
  const images: BenchImage[] = []
  const t0 = performance.now()
  for (let i = 0; i < IMAGES; i++) {
    const repository = `docker.io/bench/img-${String(i).padStart(3, '0')}`
    const base = i % bases
    const known = baseDigests.get(base)
    if (known) {
      // A cross-repository mount, as registries do for shared base layers: the harness then skips the upload.
      const res = await registryFetch(
        registry,
        `/v2/${repository}/blobs/uploads/?mount=${known.digest}&from=${known.from}`,
        { method: 'POST' },
      )
      await res.body?.cancel()
      if (res.status !== 201)
        throw new Error(`mount of ${known.digest} into ${repository}: HTTP ${res.status}`)
    }
    const pushed = await pushImage(registry, {
      repository,
      tag: '1.0',
      gzip: false,
      layers: [
        { seed: `bench-base-${base}`, size: Math.round(2 * unit) },
        { seed: `bench-${i}-a`, size: Math.round(1.5 * unit * vary(i)) },
        { seed: `bench-${i}-b`, size: Math.round(0.5 * unit * vary(i + 17)) },
      ],
    })
    const manifest = pushed.manifests[0]!
    if (!known) baseDigests.set(base, { digest: manifest.layers[0]!.digest, from: repository })
    const res = await registryFetch(registry, `/v2/${repository}/manifests/${manifest.digest}`, {
      headers: { accept: manifest.mediaType },
    })
    const config = ((await res.json()) as { config: { digest: string; size: number } }).config
    images.push({
      repository,
      tag: '1.0',
      reference: `${repository}:1.0`,
      pushed,
      configDigest: config.digest,
      configSize: config.size,
    })
    if ((i + 1) % 10 === 0 || i + 1 === IMAGES)
      log(`seeded ${i + 1}/${IMAGES} images (${fixed((performance.now() - t0) / 1000)} s)`)
  }
  return images
}

async function main(): Promise<void> {
  for (const tool of TOOLS) {
    if (!KNOWN_TOOLS.includes(tool)) throw new Error(`unknown tool ${tool}`)
  }
  if (TOOLS.includes('bundle-base') && !BASELINE)
    throw new Error('bundle-base needs BENCH_BUNDLE_BASELINE (the bin/run.js of the other build).')
  if (TOOLS.includes('bundle') && !existsSync(join(ROOT, 'dist', 'commands', 'bundle.js')))
    throw new Error('The CLI is not built: run scripts/setup (or npm run build) first.')
  const parent = process.env.BENCH_DIR ?? tmpdir()
  const work = mkdtempSync(join(parent, 'astrago-bench-'))
  cleanups.push(() => rmSync(work, { recursive: true, force: true }))
  log(`work folder ${work}`)
  const registry = await startRegistry({ flavor: 'distribution-v3' })
  cleanups.push(() => registry.stop())
  log(`registry ${registry.url}; seeding ${IMAGES} images, about ${GB} GiB unique`)
  const images = await seed(registry)

  const blobs = new Map<string, { repository: string; size: number }>()
  let referencedBytes = 0
  for (const image of images) {
    blobs.set(image.configDigest, { repository: image.repository, size: image.configSize })
    for (const layer of image.pushed.manifests[0]!.layers) {
      referencedBytes += layer.size
      if (!blobs.has(layer.digest))
        blobs.set(layer.digest, { repository: image.repository, size: layer.size })
    }
  }
  const uniqueBytes = [...blobs.values()].reduce((a, b) => a + b.size, 0)
  const layerRefs = images.length * 3
  const summary = `${images.length} images, ${layerRefs} layer references, ${blobs.size} unique blobs, ${formatSize(uniqueBytes)} unique (${formatSize(referencedBytes)} without dedup)`
  log(summary)
  // The seeding leaves GiBs of dirty pages behind; written back during the first run, they would land on that tool.
  log(`seed written to disk in ${fixed((await run('sync', [])).ms / 1000, 1)} s`)

  const results: RunResult[] = []
  const record = (r: RunResult) => {
    results.push(r)
    log(
      `${r.tool}: ${r.ok ? 'ok' : 'FAILED'} ${fixed(r.wallMs / 1000, 2)} s + flush ${fixed(r.flushMs / 1000, 2)} s, peak RSS ${r.peakRssKiB ? fixed(r.peakRssKiB / 1024, 0) : '?'} MiB, peak disk ${formatSize(r.peakDiskBytes)}${r.note ? `; ${r.note}` : ''}`,
    )
  }
  /** A peer's run into one OCI layout: flush counted, the layout's images counted, then the layout removed. */
  const recordLayout = async (tool: string, out: string, r: TimedResult, loadBefore: string) => {
    const flushMs = await flush(out)
    let indexed = 0
    try {
      indexed = (JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: unknown[] })
        .manifests.length
    } catch {}
    rmSync(out, { recursive: true, force: true })
    record({
      tool,
      ok: r.ok && indexed === images.length,
      ...measured(r),
      flushMs,
      note: `${indexed} images in index.json${r.ok ? '' : `: ${r.stderr.trim().slice(-300)}`}`,
      load: loadBefore,
    })
  }
  const settle = async () => {
    await run('sync', [])
  }

  for (const tool of TOOLS) {
    await settle()
    const loadBefore = load()
    log(`${tool} (load ${loadBefore})`)
    if (tool === 'dd') {
      const file = join(work, 'dd.bin')
      const r = await timed(
        'dd',
        'dd',
        ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${DD_MB}`, 'conv=fdatasync', 'status=none'],
        { watchDir: file, work },
      )
      rmSync(file, { force: true })
      record({
        tool: `dd ${DD_MB} MiB, conv=fdatasync`,
        ok: r.ok,
        ...measured(r),
        flushMs: 0,
        note: `${fixed(mibPerSecond(DD_MB * MiB, r.wallMs), 0)} MiB/s sequential write${r.ok ? '' : `: ${r.stderr.trim()}`}`,
        load: loadBefore,
      })
      continue
    }
    if (tool === 'raw') {
      const out = join(work, 'raw')
      mkdirSync(out)
      const config = join(work, 'curl.cfg')
      writeFileSync(
        config,
        [...blobs]
          .map(
            ([digest, b]) =>
              `url = "${registry.url}/v2/${b.repository}/blobs/${digest}"\noutput = "${join(out, digest.slice(7))}"\n`,
          )
          .join(''),
      )
      const r = await timed(
        'raw',
        'curl',
        [
          '--parallel',
          '--parallel-max',
          String(RAW_PARALLEL),
          '--silent',
          '--show-error',
          '--fail',
          '--config',
          config,
        ],
        { watchDir: out, work },
      )
      const flushMs = await flush(out)
      const files = readdirSync(out).length
      rmSync(out, { recursive: true, force: true })
      record({
        tool: `raw: curl --parallel-max ${RAW_PARALLEL}`,
        ok: r.ok && files === blobs.size,
        ...measured(r),
        flushMs,
        note: `${files} files${r.ok ? '' : `: ${r.stderr.trim().slice(-300)}`}`,
        load: loadBefore,
      })
      continue
    }
    if (tool === 'bundle' || tool === 'bundle-base') {
      const base = tool === 'bundle-base'
      const out = join(work, tool)
      mkdirSync(out)
      const definition = join(work, 'bench.json')
      writeFileSync(
        definition,
        JSON.stringify({
          apiVersion: 'airgap.astrago.io/v1alpha1',
          kind: 'Bundle',
          metadata: { name: 'bench', version: '1.0.0' },
          platforms: ['linux/amd64'],
          images: images.map((i) => i.reference),
        }),
      )
      const profDir = join(parent, `astrago-bench-cpuprof-${Date.now()}`)
      const stdoutFile = join(work, `${tool}.out`)
      const memoryFile = join(work, `${tool}.memory`)
      const r = await timed(
        tool,
        process.execPath,
        [
          ...(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
          ...(SAMPLE ? ['--import', join(import.meta.dirname, 'memory-sampler.mjs')] : []),
          base ? BASELINE! : join(ROOT, 'bin', 'run.js'),
          'bundle',
          definition,
          '--output-dir',
          out,
          '--mirror',
          `docker.io=${registry.url}/docker.io`,
          '--insecure-registry',
          registry.host,
          '-j',
          String(CONCURRENCY),
          '--json',
        ],
        {
          watchDir: out,
          stdoutFile,
          work,
          env: { BENCH_MEMORY_FILE: memoryFile, ...(base ? BASE_ENV : {}) },
        },
      )
      const flushMs = await flush(out)
      const last = readFileSync(stdoutFile, 'utf8').trim().split('\n').pop() ?? ''
      let note = ''
      try {
        const parsed = JSON.parse(last) as {
          type: string
          result?: { size: number; blobs: number; fetchedBytes: number }
          error?: { message: string }
        }
        note = parsed.result
          ? `${formatSize(parsed.result.size)} tar, ${parsed.result.blobs} blobs, ${formatSize(parsed.result.fetchedBytes)} fetched`
          : `error: ${parsed.error?.message}`
      } catch {
        note = r.stderr.trim().slice(-300)
      }
      if (SAMPLE && existsSync(memoryFile)) note += `; peaks MiB ${readFileSync(memoryFile, 'utf8').trim()}`
      if (CPU_PROF) note += `; CPU profile in ${profDir}`
      rmSync(out, { recursive: true, force: true })
      record({
        tool: `astrago-airgap ${tool} -j ${CONCURRENCY}`,
        ok: r.ok,
        ...measured(r),
        flushMs,
        note,
        load: loadBefore,
      })
      continue
    }
    if (tool === 'crane') {
      // One `crane pull` of every image into one OCI layout (crane verifies each blob's digest as it reads it).
      const out = join(work, 'crane-oci')
      const r = await timed(
        'crane',
        findTool('crane'),
        [
          'pull',
          '--insecure',
          '--platform',
          'linux/amd64',
          '--format',
          'oci',
          ...images.map((i) => `${registry.host}/${i.reference}`),
          out,
        ],
        { watchDir: out, work },
      )
      await recordLayout('crane pull → one OCI layout', out, r, loadBefore)
      continue
    }
    if (tool === 'skopeo') {
      const out = join(work, 'skopeo-oci')
      const script = join(work, 'skopeo-copy.sh')
      const skopeo = findTool('skopeo')
      writeFileSync(
        script,
        [
          'set -e',
          ...images.map(
            (i) =>
              `${skopeo} --insecure-policy copy --quiet --src-tls-verify=false docker://${registry.host}/${i.reference} oci:${out}:${i.reference}`,
          ),
          '',
        ].join('\n'),
      )
      const r = await timed('skopeo', 'bash', [script], { watchDir: out, work })
      await recordLayout('skopeo copy → one OCI layout', out, r, loadBefore)
      continue
    }
    if (tool === 'skopeo-sync') {
      const out = join(work, 'skopeo-dir')
      mkdirSync(out)
      const source = join(work, 'sync.yaml')
      writeFileSync(
        source,
        [
          `${registry.host}:`,
          '  tls-verify: false',
          '  images:',
          ...images.map((i) => `    ${i.repository}: ["${i.tag}"]`),
          '',
        ].join('\n'),
      )
      const r = await timed(
        'skopeo-sync',
        findTool('skopeo'),
        ['--insecure-policy', 'sync', '--src', 'yaml', '--dest', 'dir', source, out],
        { watchDir: out, work },
      )
      const flushMs = await flush(out)
      rmSync(out, { recursive: true, force: true })
      record({
        tool: 'skopeo sync → dir (no dedup)',
        ok: r.ok,
        ...measured(r),
        flushMs,
        note: r.ok ? 'writes shared layers once per image' : r.stderr.trim().slice(-300),
        load: loadBefore,
      })
    }
  }

  const rows = results.map((r) => [
    r.tool,
    r.ok ? 'ok' : 'FAILED',
    fixed(r.wallMs / 1000, 2),
    fixed(r.flushMs / 1000, 2),
    r.tool.startsWith('dd') ? '' : fixed(mibPerSecond(uniqueBytes, r.wallMs + r.flushMs), 0),
    r.cpuSec === undefined ? '?' : fixed(r.cpuSec, 1),
    r.sysSec === undefined ? '?' : fixed(r.sysSec, 1),
    r.peakRssKiB ? fixed(r.peakRssKiB / 1024, 0) : '?',
    formatSize(r.peakDiskBytes),
    r.load,
    r.note,
  ])
  const out: string[] = []
  out.push(`bundle vs skopeo: ${summary}`)
  out.push(...describeMachine(work).map((l) => `  ${l}`))
  out.push('')
  out.push(
    table(
      [
        'run',
        'status',
        'wall s',
        'flush s',
        'MiB/s',
        'CPU s',
        'of it sys s',
        'peak RSS MiB',
        'peak disk',
        'load before',
        'notes',
      ],
      rows,
    ),
  )
  // Medians over the runs of each tool (a tool listed twice in BENCH_TOOLS gives two samples).
  const of = (prefix: string) => results.filter((x) => x.tool.startsWith(prefix) && x.ok)
  const med = (rs: RunResult[], pick: (r: RunResult) => number | undefined) => {
    const values = rs.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v))
    return values.length ? median(values) : undefined
  }
  const wall = (rs: RunResult[]) => med(rs, (r) => r.wallMs + r.flushMs)
  const cpu = (rs: RunResult[]) => med(rs, (r) => r.cpuSec)
  const rss = (rs: RunResult[]) => med(rs, (r) => (r.peakRssKiB ? r.peakRssKiB / 1024 : undefined))
  const bundles = of('astrago-airgap bundle ')
  const bases = of('astrago-airgap bundle-base ')
  const cranes = of('crane')
  const skopeoMs = wall(of('skopeo copy'))
  const rawMs = wall(of('raw'))
  const bundleMs = wall(bundles)
  const ratio = (a: number | undefined, b: number | undefined) => (a && b ? a / b : undefined)
  const verdict = (value: number | undefined, limit: number, digits = 2, unit = '×') =>
    value === undefined ? '–' : `${fixed(value, digits)}${unit} → ${value <= limit ? 'met' : 'MISSED'}`
  out.push('')
  if (bundleMs && skopeoMs) {
    const speedup = skopeoMs / bundleMs
    out.push(`target ≥ 2× faster than skopeo: ${fixed(speedup, 2)}× → ${speedup >= 2 ? 'met' : 'MISSED'}`)
  }
  if (bundleMs && rawMs)
    out.push(`target within 1.25× of the raw parallel fetch: ${verdict(bundleMs / rawMs, 1.25)}`)
  if (bundles.length && cranes.length) {
    out.push(`target wall + flush ≤ 1.05× crane's: ${verdict(ratio(bundleMs, wall(cranes)), 1.05)}`)
    out.push(`target CPU ≤ 1.3× crane's: ${verdict(ratio(cpu(bundles), cpu(cranes)), 1.3)}`)
    out.push(
      `peak RSS against crane's: ${fixed(ratio(rss(bundles), rss(cranes)) ?? Number.NaN, 2)}× (${fixed(rss(bundles) ?? Number.NaN, 0)} against ${fixed(rss(cranes) ?? Number.NaN, 0)} MiB)`,
    )
  }
  if (bundles.length) out.push(`target peak RSS ≤ 80 MiB: ${verdict(rss(bundles), 80, 0, ' MiB')}`)
  if (bundles.length && bases.length) {
    out.push(
      `bundle against bundle-base (this build / the other, medians): wall + flush ${fixed(ratio(bundleMs, wall(bases)) ?? Number.NaN, 2)}×, CPU ${fixed(ratio(cpu(bundles), cpu(bases)) ?? Number.NaN, 2)}×, peak RSS ${fixed(rss(bundles) ?? Number.NaN, 0)} against ${fixed(rss(bases) ?? Number.NaN, 0)} MiB`,
    )
  }
  console.log(out.join('\n'))
  if (results.some((r) => !r.ok)) process.exitCode = 1
}

async function cleanup(): Promise<void> {
  for (const fn of cleanups.reverse()) {
    try {
      await fn()
    } catch {}
  }
  cleanups.length = 0
}

process.on('SIGINT', () => {
  // Children run in their own process group (so /usr/bin/time's child goes too).
  const current = currentChild()
  if (current?.pid) {
    try {
      process.kill(-current.pid, 'SIGKILL')
    } catch {}
  }
  cleanup().finally(() => process.exit(130))
})

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(cleanup)
