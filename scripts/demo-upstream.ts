/**
 * Starts the simulated upstream for scripts/demo: a real distribution registry seeded with stand-in images under the
 * names a bundle definition uses (each under /<registry host>/ so one local registry stands in for docker.io, nvcr.io,
 * quay.io, …), and an HTTP server with stand-in chart repositories. Writes the --mirror flags to a file, then serves
 * until it is stopped. Usage: tsx scripts/demo-upstream.ts <definition.yaml> <flags-file> <work-dir>
 */

import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as yaml from 'js-yaml'
import { parseImageReference } from '../src/oci/reference.js'
import { loadBundleSpec } from '../src/spec/load.js'
import { createChart } from '../test/support/charts.js'
import { startFileServer } from '../test/support/file-server.js'
import { pushImage } from '../test/support/images.js'
import { startRegistry } from '../test/support/registry.js'
import { findTool } from '../test/support/tools.js'

const [definition, flagsFile, workDir] = process.argv.slice(2)
if (!definition || !flagsFile || !workDir)
  throw new Error('usage: demo-upstream.ts <definition> <flags-file> <work-dir>')

const spec = await loadBundleSpec(definition)
const catalog = yaml.load(readFileSync(join(import.meta.dirname, 'demo-data', 'upstream.yaml'), 'utf8')) as {
  charts: Record<string, { images: string[] }>
}
const registry = await startRegistry({ flavor: 'distribution-v3' })
const images = new Set(spec.images.map((i) => i.ref))
const chartsDir = join(workDir, 'charts')
mkdirSync(chartsDir, { recursive: true })
const repoDirs = new Map<string, string>()
for (const chart of spec.charts) {
  const entry = catalog.charts[`${chart.name}@${chart.version}`]
  if (!entry)
    throw new Error(
      `scripts/demo-data/upstream.yaml has no stand-in for chart ${chart.name}@${chart.version}`,
    )
  for (const image of [...entry.images, ...chart.extraImages]) images.add(image)
  const url = new URL(chart.repo)
  const dir = join(chartsDir, url.host, url.pathname)
  mkdirSync(dir, { recursive: true })
  await createChart(dir, { name: chart.name, version: chart.version, images: entry.images })
  repoDirs.set(`${url.origin}`, join(chartsDir, url.host))
}
for (const dir of new Set([...repoDirs.values()])) {
  for (const sub of execFileSync('find', [dir, '-name', '*.tgz', '-printf', '%h\\n'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)) {
    execFileSync(findTool('helm'), ['repo', 'index', sub])
  }
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
const server = await startFileServer(chartsDir)
const flags: string[] = ['--insecure-registry', registry.host]
for (const host of new Set([...images].map((i) => parseImageReference(i).registry))) {
  flags.push('--mirror', `${host}=${registry.url}/${host}`)
}
for (const origin of repoDirs.keys())
  flags.push('--mirror', `${origin}=${server.url}/${new URL(origin).host}`)
writeFileSync(flagsFile, `${flags.join('\n')}\n`)
console.error(
  `simulated upstream: registry ${registry.url} (${images.size} stand-in images), charts ${server.url}`,
)

const stop = async () => {
  await server.stop()
  await registry.stop()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
setInterval(() => {}, 1 << 30)
