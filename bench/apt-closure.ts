/**
 * apt dependency closure over the real Debian main index, for the Astrago package list.
 *
 *   node --import tsx bench/apt-closure.ts
 *
 * Reads the Debian archive this machine's apt uses (test/support/debian-mirror.ts), fetches and verifies bookworm's
 * InRelease with debian-archive-keyring and its main/binary-amd64 Packages.gz (content-addressed under
 * ~/.cache/astrago-airgap/apt, so only the first run downloads), then measures, in this one process:
 *
 *   parse    gunzip + stream-parse the ~63,000 stanzas of Packages.gz from the local cache
 *   index    keep the candidate of each package, index Provides
 *   closure  the minbase baseline (Priority: required + apt + usr-is-merged) and the closure of the Astrago list
 *
 * `parse` is measured once (cold, as a real run), `index` and `closure` once cold and then BENCH_ROUNDS (5) times
 * warm (median). Peak memory is the process's maximum RSS (getrusage), read at the end: it covers the whole run.
 * The Astrago list is section 4 of the inventory (its Ubuntu list), with Debian bookworm names where they differ.
 */

import { homedir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { HttpClient } from '../src/net/http.js'
import { buildAptIndex, resolveAptClosure } from '../src/packages/apt-closure.js'
import type { AptPackage } from '../src/packages/apt-index.js'
import { downloadVerified, fetchAptRelease, pickIndex, readPackagesFile } from '../src/packages/apt-source.js'
import { ASTRAGO_DEBIAN_PACKAGES, debianMirror } from '../test/support/debian-mirror.js'
import { closurePhases, describeMachine, fixed, log, MiB } from './support.js'

const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
const cacheDir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'astrago-airgap', 'apt')

async function main(): Promise<void> {
  const mirror = debianMirror('bookworm')
  log(`mirror ${mirror.url} (from this machine's apt sources)`)
  const http = new HttpClient()
  const { release } = await fetchAptRelease({
    http,
    source: {
      mirror: mirror.url,
      suite: mirror.suite,
      components: ['main'],
      architectures: ['amd64'],
      keyrings: [mirror.keyring],
    },
  })
  const path = pickIndex(release, 'main/binary-amd64')!
  const entry = release.sha256.get(path)!
  const cached = join(cacheDir, 'sha256', entry.sha256)
  const url = `${mirror.url}/dists/${mirror.suite}/${path}`
  const downloaded = await downloadVerified(http, url, cached, entry)
  await http.close()
  log(
    `${path}: ${(entry.size / MiB).toFixed(1)} MiB, verified against the signed InRelease; ${downloaded ? 'downloaded to' : 'already in'} ${cached}`,
  )

  const rssBefore = process.memoryUsage().rss
  let start = performance.now()
  const packages: AptPackage[] = await readPackagesFile(cached, path)
  const parseMs = performance.now() - start

  const indexTimes: number[] = []
  const closureTimes: number[] = []
  let result: ReturnType<typeof resolveAptClosure> | undefined
  let coldMaxRss = 0
  for (let round = 0; round <= rounds; round++) {
    start = performance.now()
    const index = buildAptIndex(packages, { architecture: 'amd64' })
    const indexed = performance.now()
    result = resolveAptClosure({
      index,
      requests: ASTRAGO_DEBIAN_PACKAGES,
      baseline: { priorities: ['required'], packages: ['apt', 'usr-is-merged'] },
    })
    const done = performance.now()
    indexTimes.push(indexed - start)
    closureTimes.push(done - indexed)
    if (round === 0) coldMaxRss = process.resourceUsage().maxRSS * 1024
  }
  const heap = process.memoryUsage()
  const maxRss = process.resourceUsage().maxRSS * 1024
  const phases = closurePhases(
    rounds,
    { label: 'parse Packages.gz', ms: parseMs },
    { label: 'index (candidates, Provides)', times: indexTimes },
    { label: 'closure (baseline + request)', times: closureTimes },
  )
  const coldTotal = phases.coldTotal
  const bytes = result!.packages.reduce((sum, p) => sum + p.size, 0)

  process.stdout.write(
    [
      '',
      ...describeMachine(cacheDir),
      '',
      `index: ${packages.length} stanzas (${path}); request: ${ASTRAGO_DEBIAN_PACKAGES.length} packages; baseline: ${result!.baseline.length} packages`,
      `closure: ${result!.packages.length} packages to fetch, ${(bytes / MiB).toFixed(1)} MiB of .deb files`,
      '',
      phases.table,
      '',
      `peak RSS of the process after the cold run: ${fixed(coldMaxRss / MiB, 0)} MiB (RSS before parsing, i.e. node + tsx + undici: ${fixed(rssBefore / MiB, 0)} MiB); after the warm rounds too: ${fixed(maxRss / MiB, 0)} MiB; heap used at the end: ${fixed(heap.heapUsed / MiB, 0)} MiB`,
      `targets: resolution (parse + index + closure, cold) < 2000 ms: ${coldTotal < 2000 ? 'met' : 'MISSED'}; peak RSS of a run < 300 MiB: ${coldMaxRss < 300 * MiB ? 'met' : 'MISSED'}`,
      '',
    ].join('\n'),
  )
  if (process.env.BENCH_LIST)
    process.stdout.write(`${result!.packages.map((p) => `${p.package}=${p.version}`).join('\n')}\n`)
}

await main()
