/**
 * rpm dependency closure over a synthetic primary.xml of distribution size.
 *
 *   node --import tsx bench/rpm-closure.ts
 *
 * Generates (deterministically, seeded) a createrepo-style primary.xml.gz of BENCH_PACKAGES (60,000) packages about
 * the size of a distribution's (each with a summary, a description, self provides, sonames, 10–20 requires among
 * sonames, versioned package requires, file requires and the odd `(a or b)`, files under /usr/bin and /etc; one
 * package in ten in two versions), then measures, in this one process:
 *
 *   parse    gunzip + stream-parse primary.xml.gz from disk (every package with its dependencies and primary's files;
 *            the raw XML is not kept, as resolveRpmPackages reads it again for the chosen packages only)
 *   index    keep the accepted architectures, index names, provides and files
 *   closure  the closure of BENCH_REQUESTS (40) packages chosen across the index over a small baseline
 *
 * `parse` is measured once (cold), `index` and `closure` once cold and BENCH_ROUNDS (5) times warm (median). Peak
 * memory is the process's maximum RSS (getrusage).
 */

import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { resolveRpmClosure } from '../src/packages/rpm-closure.js'
import { buildRpmIndex } from '../src/packages/rpm-index.js'
import { readPrimaryFile } from '../src/packages/rpm-primary.js'
import { closurePhases, describeMachine, fixed, log, MiB } from './support.js'

const COUNT = Number(process.env.BENCH_PACKAGES ?? 60_000)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 40)
const rounds = Number(process.env.BENCH_ROUNDS ?? 5)

/** mulberry32: a small seeded PRNG, so every run measures the same repository. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const name = (i: number) => `pkg${String(i).padStart(5, '0')}`

function entry(n: string, evr?: string, pre = false): string {
  if (!evr) return `      <rpm:entry name="${n}"${pre ? ' pre="1"' : ''}/>`
  const [ver, rel] = evr.split('-')
  return `      <rpm:entry name="${n}" flags="EQ" epoch="0" ver="${ver}"${rel ? ` rel="${rel}"` : ''}/>`
}

function generate(): string {
  const rand = random(42)
  const lorem =
    'This package provides a component of a synthetic distribution used to measure the closure resolver; '.repeat(
      3,
    )
  const blocks: string[] = []
  for (let i = 0; i < COUNT; i++) {
    const versions = i % 10 === 0 ? ['1.0', '1.1'] : ['1.0']
    for (const ver of versions) {
      const n = name(i)
      const arch = i % 3 === 0 ? 'noarch' : 'x86_64'
      const provides = [entry(n, `${ver}-1.fc40`)]
      if (arch !== 'noarch') provides.push(entry(`${n}(x86-64)`, `${ver}-1.fc40`))
      if (i % 3 === 1) provides.push(entry(`lib${n}.so.1()(64bit)`))
      if (i % 50 === 7) provides.push(entry('virtual-mta'))
      const requires: string[] = [entry('/bin/sh', undefined, true), entry('rpmlib(CompressedFileNames)')]
      const deps = 10 + Math.floor(rand() * 10)
      // Packages come in clusters of 100 (a stack: toolkit, libraries, apps) over a core of 500 (glibc & co.):
      // requires go to lower packages of the own cluster or to the core, as in a distribution.
      const cluster = i < 500 ? 0 : Math.floor(i / 100) * 100
      for (let d = 0; d < deps && i > 10; d++) {
        const j =
          rand() < 0.6 && i - cluster > 1
            ? cluster + Math.floor(rand() * (i - cluster))
            : Math.floor(rand() * Math.min(i, 500))
        const kind = rand()
        if (kind < 0.5 && j % 3 === 1) requires.push(entry(`lib${name(j)}.so.1()(64bit)`))
        else if (kind < 0.8)
          requires.push(`      <rpm:entry name="${name(j)}" flags="GE" epoch="0" ver="1.0"/>`)
        else if (kind < 0.9) requires.push(entry(`/usr/bin/${name(j)}`))
        else if (kind < 0.97) requires.push(entry(`(${name(j)} or ${name(Math.floor(j / 2))})`))
        else requires.push(entry('virtual-mta'))
      }
      blocks.push(`<package type="rpm">
  <name>${n}</name>
  <arch>${arch}</arch>
  <version epoch="0" ver="${ver}" rel="1.fc40"/>
  <checksum type="sha256" pkgid="YES">${(i * 2 + versions.indexOf(ver)).toString(16).padStart(64, '0')}</checksum>
  <summary>Synthetic package ${n} &amp; friends</summary>
  <description>${lorem}</description>
  <packager>Fedora Project</packager>
  <url>https://example.invalid/${n}</url>
  <time file="1700000000" build="1700000000"/>
  <size package="${1000 + i}" installed="${5000 + i}" archive="${5200 + i}"/>
  <location href="Packages/p/${n}-${ver}-1.fc40.${arch}.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:vendor>Fedora Project</rpm:vendor>
    <rpm:group>Unspecified</rpm:group>
    <rpm:buildhost>buildvm.example.invalid</rpm:buildhost>
    <rpm:sourcerpm>${n}-${ver}-1.fc40.src.rpm</rpm:sourcerpm>
    <rpm:header-range start="4504" end="${9000 + i}"/>
    <rpm:provides>
${provides.join('\n')}
    </rpm:provides>
    <rpm:requires>
${requires.join('\n')}
    </rpm:requires>
    <file>/usr/bin/${n}</file>
    <file>/etc/${n}.conf</file>
  </format>
</package>`)
    }
  }
  return `<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="${blocks.length}">
${blocks.join('\n')}
</metadata>
`
}

async function main(): Promise<void> {
  const dir = process.env.BENCH_KEEP ?? (await mkdtemp(join(tmpdir(), 'aa-bench-rpm-')))
  try {
    let start = performance.now()
    const file = join(dir, 'primary.xml.gz')
    // Generated in a child process, so its strings do not count in this one's peak RSS.
    execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'generate', file], {
      stdio: 'inherit',
    })
    const xmlBytes = Number(await readFile(`${file}.size`, 'utf8'))
    log(
      `generated ${COUNT} packages: primary.xml ${fixed(xmlBytes / MiB)} MiB, .gz ${fixed((await stat(file)).size / MiB)} MiB in ${fixed(performance.now() - start, 0)} ms`,
    )
    const rssBefore = process.memoryUsage().rss

    start = performance.now()
    const packages = await readPrimaryFile(file, file, { raw: false })
    const parseMs = performance.now() - start
    const rand = random(7)
    const requests = Array.from({ length: REQUESTS }, () =>
      name(COUNT - 1 - Math.floor(rand() * (COUNT / 2))),
    )
    const baseline = ['bash', '/bin/sh', 'glibc']

    const indexTimes: number[] = []
    const closureTimes: number[] = []
    let result: ReturnType<typeof resolveRpmClosure> | undefined
    let coldMaxRss = 0
    for (let round = 0; round <= rounds; round++) {
      start = performance.now()
      const index = buildRpmIndex(packages, { architectures: ['x86_64'] })
      const indexed = performance.now()
      result = resolveRpmClosure({ index, requests, baseline })
      const done = performance.now()
      indexTimes.push(indexed - start)
      closureTimes.push(done - indexed)
      if (round === 0) coldMaxRss = process.resourceUsage().maxRSS * 1024
    }
    const heap = process.memoryUsage()
    const maxRss = process.resourceUsage().maxRSS * 1024
    const phases = closurePhases(
      rounds,
      { label: 'parse primary.xml.gz', ms: parseMs },
      { label: 'index (names, provides, files)', times: indexTimes },
      { label: 'closure', times: closureTimes },
    )
    process.stdout.write(
      [
        '',
        ...describeMachine(dir),
        '',
        `index: ${packages.length} packages (${COUNT} names), primary.xml ${fixed(xmlBytes / MiB)} MiB; request: ${requests.length} packages; baseline: ${baseline.length} names`,
        `closure: ${result!.packages.length} packages`,
        '',
        phases.table,
        '',
        `peak RSS after the cold run: ${fixed(coldMaxRss / MiB, 0)} MiB (RSS before parsing, i.e. node + tsx: ${fixed(rssBefore / MiB, 0)} MiB); after the warm rounds: ${fixed(maxRss / MiB, 0)} MiB; heap used at the end: ${fixed(heap.heapUsed / MiB, 0)} MiB`,
        '',
      ].join('\n'),
    )
  } finally {
    if (!process.env.BENCH_KEEP) await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === 'generate') {
  const xml = generate()
  await writeFile(process.argv[3]!, gzipSync(xml, { level: 6 }))
  await writeFile(`${process.argv[3]!}.size`, String(Buffer.byteLength(xml)))
} else await main()
