/**
 * Starts the simulated upstream for scripts/demo: a real distribution registry seeded with stand-in images under the
 * names a bundle definition uses (each under /<registry host>/ so one local registry stands in for docker.io, nvcr.io,
 * quay.io, …): the definition's images, the images its stand-in charts render, its charts' extraImages and the images
 * its stage manifests name. Charts of https:// repositories are served by an HTTP server as stand-in chart
 * repositories; charts of oci:// repositories are pushed into the same registry as OCI chart artifacts (what
 * `helm push` writes), under their normalized registry name (oci://registry-1.docker.io/bitnamicharts is docker.io's).
 * The definition's apt package sources get stand-in archives (scripts/demo-apt-archive.ts) signed with a demo key.
 * Charts from git repositories are served over real git HTTP from stand-in repositories (scripts/demo-git-upstream.ts).
 * Writes the definition to bundle (see demoDefinition; a DEMO copy is named <name>-demo) to <work-dir>/definition and
 * the --mirror (and --mirror-keyring) flags to a file, then serves until it is stopped.
 * Usage: tsx scripts/demo-upstream.ts <definition.yaml> <flags-file> <work-dir>
 */

import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import * as yaml from 'js-yaml'
import { parseDocument } from 'yaml'
import { ImageCollector } from '../src/charts/discover-images.js'
import { readChartMetadata } from '../src/charts/download.js'
import { buildChartArtifact } from '../src/oci/chart-artifact.js'
import { MediaType } from '../src/oci/media-types.js'
import { parseImageReference } from '../src/oci/reference.js'
import { stopGpgAgent } from '../src/packages/apt-signature.js'
import { loadBundleSpec } from '../src/spec/load.js'
import { type AptSourceSpec, isRepoChart } from '../src/spec/types.js'
import { createChart, helm } from '../test/support/charts.js'
import { startFileServer } from '../test/support/file-server.js'
import { pushBlob, pushImage, pushManifest } from '../test/support/images.js'
import { startRegistry } from '../test/support/registry.js'
import { findTool } from '../test/support/tools.js'
import { demoArchiveKey, type StandInDeb, writeStandInArchive } from './demo-apt-archive.js'
import { gitChartEntries, type StandInGitRepository, startStandInGitUpstream } from './demo-git-upstream.js'

const [definition, flagsFile, workDir] = process.argv.slice(2)
if (!definition || !flagsFile || !workDir)
  throw new Error('usage: demo-upstream.ts <definition> <flags-file> <work-dir>')

const spec = await loadBundleSpec(definition)
const catalog = yaml.load(readFileSync(join(import.meta.dirname, 'demo-data', 'upstream.yaml'), 'utf8')) as {
  /** `chart`: a stand-in chart folder under demo-data, packaged as it is (else a generated one-Deployment chart). */
  charts: Record<string, { images: string[]; chart?: string }>
  /** Per package repository name: stand-in .deb name → version, dependencies, priority, suite. */
  debs?: Record<string, Record<string, StandInDeb>>
  /** Repository URL → the folder (under demo-data) its stand-in is made from. */
  gitRepositories?: Record<string, StandInGitRepository>
}
// Charts from git (`git:` entries) are not in charts: above; their stand-in repositories are served over git HTTP.
const gitCharts = gitChartEntries(yaml.load(readFileSync(definition, 'utf8')))
const gitChartIndexes = new Set(gitCharts.map((c) => c.index))
const registry = await startRegistry({ flavor: 'distribution-v3' })
const images = new Set(spec.images.map((i) => i.ref))
const chartsDir = join(workDir, 'charts')
mkdirSync(chartsDir, { recursive: true })
const repoDirs = new Map<string, string>()
const ociCharts: { tgz: string; repository: string; tag: string }[] = []
for (const [index, chart] of spec.charts.entries()) {
  if (gitChartIndexes.has(index) || !isRepoChart(chart)) continue
  const entry = catalog.charts[`${chart.name}@${chart.version}`]
  if (!entry)
    throw new Error(
      `scripts/demo-data/upstream.yaml has no stand-in for chart ${chart.name}@${chart.version}`,
    )
  for (const image of [...entry.images, ...chart.extraImages]) images.add(image)
  if (chart.repo.startsWith('oci://')) {
    // The reference `bundle` pulls: <repo without oci://>/<name>:<version> ("+" as "_"), registry normalized.
    const ref = parseImageReference(
      `${chart.repo.replace(/^oci:\/\//, '').replace(/\/+$/, '')}/${chart.name}:${chart.version.replace(/\+/g, '_')}`,
    )
    const dir = join(chartsDir, 'oci', ref.registry, ref.repository)
    mkdirSync(dir, { recursive: true })
    const tgz = await createChart(dir, { name: chart.name, version: chart.version, images: entry.images })
    ociCharts.push({ tgz, repository: `${ref.registry}/${ref.repository}`, tag: ref.tag! })
    continue
  }
  const url = new URL(chart.repo)
  const dir = join(chartsDir, url.host, url.pathname)
  mkdirSync(dir, { recursive: true })
  if (entry.chart) await packageStandIn(join(import.meta.dirname, 'demo-data', entry.chart), dir)
  else await createChart(dir, { name: chart.name, version: chart.version, images: entry.images })
  repoDirs.set(`${url.origin}`, join(chartsDir, url.host))
}
for (const dir of new Set([...repoDirs.values()])) {
  for (const sub of execFileSync('find', [dir, '-name', '*.tgz', '-printf', '%h\\n'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)) {
    execFileSync(findTool('helm'), ['repo', 'index', sub])
  }
}
const gitUpstream = gitCharts.length
  ? await startStandInGitUpstream(
      gitCharts,
      catalog.gitRepositories ?? {},
      join(import.meta.dirname, 'demo-data'),
      workDir,
    )
  : undefined
for (const image of gitUpstream?.images ?? []) images.add(image)
// Images the stages' own manifests name (the same walk `bundle` does over them; stage.yaml is the stage's settings).
for (const stage of spec.stages) {
  const path = resolve(dirname(spec.source), stage.path)
  const collector = new ImageCollector()
  for (const file of listFiles(path)) {
    if (!/\.ya?ml$/.test(file) || relative(path, file) === 'stage.yaml') continue
    collector.addDocuments(readFileSync(file, 'utf8'), file)
  }
  for (const image of collector.result()) if (!image.ref.includes('${{')) images.add(image.ref)
}
const platforms = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
]
for (const image of [...images].sort()) {
  const ref = parseImageReference(image)
  await pushImage(registry, {
    repository: `${ref.registry}/${ref.repository}`,
    tag: ref.tag ?? 'latest',
    platforms,
    layers: [
      { seed: 'demo-base-layer', size: 2_000_000, sharedAcrossPlatforms: true },
      { seed: `demo-${image}`, size: 500_000 },
    ],
  })
}
const ociHosts = new Set<string>()
for (const chart of ociCharts) {
  const tgz = readFileSync(chart.tgz)
  const artifact = buildChartArtifact(tgz, await readChartMetadata(tgz))
  for (const [digest, bytes] of [
    [artifact.configDigest, artifact.config],
    [artifact.chartDigest, tgz],
  ] as const) {
    await pushBlob(registry, chart.repository, { digest, chunks: () => [bytes] })
  }
  await pushManifest(registry, chart.repository, chart.tag, MediaType.ociManifest, artifact.manifest)
  ociHosts.add(chart.repository.split('/')[0]!)
}
// Stand-in apt archives for the definition's apt package sources, served beside the charts: one archive per mirror
// URL, holding the stand-ins of every repository read from it (their suites and components together).
const aptMirrors: { url: string; path: string }[] = []
let archiveKey: Awaited<ReturnType<typeof demoArchiveKey>> | undefined
const byMirror = new Map<string, { source: AptSourceSpec; debs: Record<string, StandInDeb> }>()
for (const repository of spec.packages) {
  if (!repository.apt) continue
  const debs = catalog.debs?.[repository.name]
  if (!debs) throw new Error(`scripts/demo-data/upstream.yaml has no stand-in debs for ${repository.name}`)
  const url = repository.apt.mirror.replace(/\/+$/, '')
  const merged = byMirror.get(url)
  if (!merged) {
    byMirror.set(url, { source: { ...repository.apt }, debs: { ...debs } })
    continue
  }
  const union = (a: string[], b: string[]) => [...new Set([...a, ...b])]
  merged.source.suites = union(merged.source.suites, repository.apt.suites)
  merged.source.components = union(merged.source.components, repository.apt.components)
  Object.assign(merged.debs, debs)
}
for (const [url, { source, debs }] of byMirror) {
  archiveKey ??= await demoArchiveKey(join(workDir, 'apt-key'))
  const parsed = new URL(url)
  const path = `${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`
  await writeStandInArchive(join(chartsDir, path), source, debs, archiveKey.key)
  aptMirrors.push({ url, path })
}
if (archiveKey) await stopGpgAgent(archiveKey.key.homeDir)
const server = await startFileServer(chartsDir)
const flags: string[] = ['--insecure-registry', registry.host]
const registryHosts = [...images].map((i) => parseImageReference(i).registry)
for (const host of new Set([...registryHosts, ...ociHosts])) {
  flags.push('--mirror', `${host}=${registry.url}/${host}`)
}
for (const origin of repoDirs.keys())
  flags.push('--mirror', `${origin}=${server.url}/${new URL(origin).host}`)
for (const mirror of aptMirrors) {
  flags.push('--mirror', `${mirror.url}=${server.url}/${mirror.path}`)
  flags.push('--mirror-keyring', `${mirror.url}=${archiveKey!.keyring}`)
}
if (gitUpstream) flags.push(...gitUpstream.mirrorFlags)
writeFileSync(join(workDir, 'definition'), `${demoDefinition()}\n`)
writeFileSync(flagsFile, `${flags.join('\n')}\n`)
console.error(
  `simulated upstream: registry ${registry.url} (${images.size} stand-in images, ${ociCharts.length} OCI charts), charts ${server.url}` +
    (gitUpstream
      ? `, git ${gitUpstream.server.url} (${gitCharts.length} charts from stand-in repositories)`
      : ''),
)

/**
 * The definition the demo bundles. `files:` pins release binaries (helm, kubectl) by the sha256 their projects
 * publish, and git charts may pin a real commit; a simulated upstream can serve neither, so when there are any, the
 * demo bundles a copy of the definition without the files and with the stand-ins' commits (written to the work
 * folder, clearly labelled, stage paths rebased, named <name>-demo so its bundle cannot be mistaken for the real
 * one) and says so. Everything else is the definition as written.
 */
function demoDefinition(): string {
  const refRewrites = gitUpstream?.refRewrites ?? new Map<number, string>()
  if (spec.files.length === 0 && refRewrites.size === 0) return resolve(definition!)
  const doc = parseDocument(readFileSync(definition!, 'utf8'))
  const why: string[] = []
  if (spec.files.length) {
    doc.delete('files')
    why.push('without files: (the simulated upstream cannot serve the real release binaries)')
  }
  // A pinned commit of a real repository cannot be served by a stand-in: the copy pins the stand-in's commit.
  for (const [index, commit] of refRewrites) {
    const nested = typeof doc.getIn(['charts', index, 'git', 'url']) === 'string'
    doc.setIn(nested ? ['charts', index, 'git', 'ref'] : ['charts', index, 'ref'], commit)
  }
  if (refRewrites.size) why.push('with git charts pinned to the commits of their STAND-IN repositories')
  const description = doc.getIn(['metadata', 'description'])
  doc.setIn(['metadata', 'description'], `DEMO copy ${why.join(', ')}. ${description ?? ''}`.trim())
  // A bundle of stand-ins must not be mistaken for the real one: its name says DEMO (astrago → astrago-demo).
  doc.setIn(['metadata', 'name'], demoName(spec.metadata.name))
  for (const [i, stage] of spec.stages.entries())
    doc.setIn(['stages', i, 'path'], relative(workDir!, resolve(dirname(spec.source), stage.path)))
  const copy = join(workDir!, `${basename(definition!, '.yaml')}.demo.yaml`)
  writeFileSync(
    copy,
    `# DEMO copy of ${resolve(definition!)} made by scripts/demo-upstream.ts: ${why.join(', ')}.\n${doc.toString()}`,
  )
  if (spec.files.length)
    console.error(
      `simulated upstream: ${spec.files.length} files (${spec.files.map((f) => f.path).join(', ')}) are left out of the DEMO bundle: their sha256 pins the real release bytes`,
    )
  if (refRewrites.size)
    console.error(
      `simulated upstream: ${refRewrites.size} git chart(s) pinned to a real commit are pinned to their stand-in's commit in the DEMO copy`,
    )
  return copy
}

/** Packages a stand-in chart folder of demo-data into `dir` (helm package: the chart's own name and version). */
async function packageStandIn(folder: string, dir: string): Promise<void> {
  await helm(['package', folder, '--destination', dir], { home: join(workDir!, '.helm') })
}

/** The name of a demo copy: `<name>-demo` (kept when it already ends so). */
function demoName(name: string): string {
  return name.endsWith('-demo') ? name : `${name}-demo`
}

function listFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path]
  return readdirSync(path, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(path, e.name)) : e.isFile() ? [join(path, e.name)] : [],
  )
}

const stop = async () => {
  await gitUpstream?.stop()
  await server.stop()
  await registry.stop()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
setInterval(() => {}, 1 << 30)
