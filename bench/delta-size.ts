/**
 * Benchmark (not a test): how large a delta bundle (`bundle --base`) is against the full bundle of the same release,
 * for a one-image change, a one-chart change and both. Seeds a synthetic upstream (delta-upstream.ts: a real
 * distribution registry and chart repository), builds 1.0.0 full, then each change full and as a delta on 1.0.0,
 * verifies each delta with `verify --base`, and prints the sizes, the members each delta writes and leaves to its
 * base, what those written members are, and how long each run took ("delta blobs fetched": the image blob bytes the
 * delta run downloaded; charts are downloaded earlier, to be resolved and rendered, and are not counted there).
 * Knobs: BENCH_GB (1: unique layer bytes of 1.0.0), BENCH_IMAGES (12), BENCH_BASES (3 shared base layers),
 * BENCH_CONCURRENCY (bundle -j, 8). Everything is created under the temp folder (TMPDIR) and removed at the end, also
 * on Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { generateAptSigningKey } from '../src/packages/apt-signature.js'
import { startReleaseFixture } from '../test/support/release-fixture.js'
import { ROOT } from './bench-set.js'
import { size, summarizeMembers, tarEntries } from './delta-members.js'
import { type Release, seedUpstream } from './delta-upstream.js'
import { describeMachine, fixed, formatSize, load, log, table } from './support.js'

const GB = Number(process.env.BENCH_GB ?? 1)
const IMAGES = Number(process.env.BENCH_IMAGES ?? 12)
const BASES = Number(process.env.BENCH_BASES ?? 3)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)

const cleanups: (() => Promise<void> | void)[] = []
let current: ChildProcess | undefined

interface Run {
  // biome-ignore lint/suspicious/noExplicitAny: the --json result of a command; the script reads a few fields
  result: any
  seconds: number
}

/** Runs the built CLI with --json, timed; throws with its output when it fails. */
function cli(args: string[]): Promise<Run> {
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    current = child
    let last = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => {
      last = (last + d).slice(-1 << 20)
    })
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d).slice(-4000)
    })
    child.on('error', reject)
    child.on('close', (code) => {
      current = undefined
      const seconds = (performance.now() - t0) / 1000
      const line = last.trim().split('\n').pop() ?? ''
      let event: { type?: string; result?: unknown } = {}
      try {
        event = JSON.parse(line)
      } catch {}
      if (code === 0 && event.type === 'result') resolve({ result: event.result, seconds })
      else reject(new Error(`${args[0]} exited ${code}: ${err}${line}`))
    })
  })
}

/** A ratio in percent: two decimals, or two significant digits below 1 %. */
const percent = (ratio: number) =>
  `${100 * ratio >= 1 ? fixed(100 * ratio, 2) : (100 * ratio).toPrecision(2)} %`

interface Measured {
  release: Release
  full: { size: number; seconds: number; members: number }
  delta: { size: number; seconds: number; written: number; left: number; leftBytes: number; fetched: number }
  verifySeconds: number
  breakdown: ReturnType<typeof summarizeMembers>
}

async function main(): Promise<void> {
  const fx = await startReleaseFixture('bench-delta')
  cleanups.push(() => fx.stop())
  log(`work folder ${fx.work} (load ${load()})`)
  const key = await generateAptSigningKey({
    homeDir: join(fx.work, 'key'),
    userId: 'delta bench <bench@astrago.invalid>',
    created: new Date('2026-01-01T00:00:00Z'),
  })
  const upstream = await seedUpstream(fx, { gb: GB, images: IMAGES, bases: BASES })
  const common = [
    ...fx.mirrors(),
    '--signing-key',
    key.homeDir,
    '--no-installer',
    '--concurrency',
    String(CONCURRENCY),
  ]
  const build = async (release: Release, output: string, ...extra: string[]) => {
    const run = await cli(['bundle', release.definition, '--output', output, ...common, ...extra])
    log(
      `bundle ${release.version}${extra.length ? ' (delta)' : ''}: ${fixed(run.seconds, 2)} s (load ${load()})`,
    )
    return run
  }

  const [first, ...changes] = upstream.releases
  const base = join(fx.work, 'out', 'bench-delta-1.0.0.tar')
  const baseRun = await build(first!, base)
  const baseMembers = tarEntries(base).length
  const measured: Measured[] = []
  for (const release of changes) {
    const full = join(fx.work, 'out', `bench-delta-${release.version}.tar`)
    const delta = join(fx.work, 'out', `bench-delta-${release.version}-from-1.0.0.tar`)
    const fullRun = await build(release, full)
    const fullMembers = tarEntries(full).length
    const fullSize = statSync(full).size
    rmSync(full)
    const deltaRun = await build(release, delta, '--base', base)
    const verify = await cli(['verify', delta, '--base', base])
    log(
      `verify --base ${release.version}: OK, ${verify.result.members} members in ${fixed(verify.seconds, 2)} s`,
    )
    const entries = tarEntries(delta)
    measured.push({
      release,
      full: { size: fullSize, seconds: fullRun.seconds, members: fullMembers },
      delta: {
        size: statSync(delta).size,
        seconds: deltaRun.seconds,
        written: entries.length,
        left: deltaRun.result.base.members,
        leftBytes: deltaRun.result.base.bytes,
        fetched: deltaRun.result.fetchedBytes,
      },
      verifySeconds: verify.seconds,
      breakdown: summarizeMembers(delta, entries),
    })
    rmSync(delta)
  }

  console.log(
    `\n## delta bundles: ${IMAGES} images (${formatSize(upstream.uniqueBytes)} of unique layers), 3 charts, one stage\n`,
  )
  for (const line of describeMachine(fx.work)) console.log(`- ${line}`)
  console.log(
    `- base 1.0.0 (full): ${formatSize(statSync(base).size)}, ${baseMembers} members, bundle ${fixed(baseRun.seconds, 2)} s\n`,
  )
  console.log(
    table(
      [
        'change on 1.0.0',
        'full',
        'delta',
        'delta/full',
        'members written',
        'left to base',
        'bundle full s',
        'bundle delta s',
        'delta blobs fetched',
        'verify --base',
      ],
      measured.map((m) => [
        `${m.release.change} (${m.release.version})`,
        formatSize(m.full.size),
        formatSize(m.delta.size),
        percent(m.delta.size / m.full.size),
        `${m.delta.written} of ${m.full.members}`,
        `${m.delta.left} (${formatSize(m.delta.leftBytes)})`,
        fixed(m.full.seconds, 2),
        fixed(m.delta.seconds, 2),
        size(m.delta.fetched),
        `OK (${fixed(m.verifySeconds, 2)} s)`,
      ]),
    ),
  )
  for (const m of measured) {
    console.log(`\nWhat the delta ${m.release.version} (${m.release.change}) writes:\n`)
    console.log(
      table(
        ['kind', 'members', 'bytes', 'members (blobs: digest… size)'],
        m.breakdown.map((g) => [g.kind, String(g.members), size(g.bytes), g.paths.join(', ')]),
      ),
    )
  }
}

async function cleanup(): Promise<void> {
  for (const fn of cleanups.reverse()) {
    try {
      await fn()
    } catch {}
  }
  cleanups.length = 0
}

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    current?.kill('SIGKILL')
    cleanup().finally(() => process.exit(130))
  })

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(cleanup)
