import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pushImage } from '../test/support/images.js'
import type { ReleaseFixture } from '../test/support/release-fixture.js'
import { formatSize, GiB, log } from './support.js'

/**
 * The synthetic upstream of the delta benchmark, in a release fixture (a real distribution registry and a file
 * server standing in for the chart repository): `images` uncompressed images of three layers each (a base layer
 * shared by a group of images, a dependencies layer and a top layer of its own; about a fifth of the unique bytes are
 * in the shared bases), three charts that render six of the images, and one stage: a stage.yaml installing the charts
 * and a manifest with a Deployment for each other image. Release `1.0.0` and three changes on it are written as bundle
 * definitions; each change pushes what it needs first (a new image tag, a new chart version).
 */
export interface UpstreamOptions {
  gb: number
  images: number
  /** How many shared base layers (each under images/bases images). */
  bases: number
}

export interface Release {
  version: string
  /** What changed from 1.0.0, for the table. */
  change: string
  definition: string
}

const CHARTS = 3
/** Images 0…5 are rendered by the charts (two each); the others are in the stage's manifest. */
const IN_CHARTS = 2 * CHARTS
const repository = (i: number) => `docker.io/bench/delta-${String(i).padStart(2, '0')}`

export interface Upstream {
  /** Unique layer bytes of release 1.0.0's images. */
  uniqueBytes: number
  /** The definitions, 1.0.0 first. */
  releases: Release[]
}

export async function seedUpstream(fx: ReleaseFixture, options: UpstreamOptions): Promise<Upstream> {
  const { images, bases } = options
  if (images <= IN_CHARTS) throw new Error(`BENCH_IMAGES must be more than ${IN_CHARTS}`)
  const total = options.gb * GiB
  const baseSize = Math.round((0.2 * total) / bases)
  const own = (0.8 * total) / images
  const vary = (i: number) => 0.75 + 0.5 * ((i * 0.6180339887) % 1)
  const layers = (i: number, top: string) => [
    { seed: `delta-base-${i % bases}`, size: baseSize },
    { seed: `delta-deps-${i}`, size: Math.round((2 / 3) * own * vary(i)) },
    { seed: top, size: Math.round((1 / 3) * own * vary(i)) },
  ]
  log(
    `seeding ${images} images over ${bases} shared base layers, about ${options.gb} GiB, into ${fx.registry.url}`,
  )
  let uniqueBytes = bases * baseSize
  for (let i = 0; i < images; i++) {
    const pushed = await pushImage(fx.registry, {
      repository: repository(i),
      tag: '1.0',
      gzip: false,
      layers: layers(i, `delta-top-${i}-1.0`),
    })
    uniqueBytes += pushed.manifests[0]!.layers.slice(1).reduce((sum, l) => sum + l.size, 0)
  }
  log(`${formatSize(uniqueBytes)} of unique layers; charts and stages`)
  for (let c = 0; c < CHARTS; c++) await fx.chart(`chart-${c}`, '1.0.0', chartImages(c))

  // The changed image: the last one (in the stage's manifest), tag 1.1 with a new top layer over the same two.
  const changedImage = images - 1
  await pushImage(fx.registry, {
    repository: repository(changedImage),
    tag: '1.1',
    gzip: false,
    layers: layers(changedImage, `delta-top-${changedImage}-1.1`),
  })
  // The changed chart: chart-1 at 1.1.0, rendering the same images.
  await fx.chart('chart-1', '1.1.0', chartImages(1))

  const release = (version: string, change: string, newImage: boolean, newChart: boolean): Release => {
    const tags = Array.from({ length: images }, (_, i) => (newImage && i === changedImage ? '1.1' : '1.0'))
    const chartVersions = Array.from({ length: CHARTS }, (_, c) => (newChart && c === 1 ? '1.1.0' : '1.0.0'))
    writeStage(join(fx.work, version, 'platform'), tags, chartVersions)
    const definition = fx.definition(`${version}.yaml`, {
      metadata: { name: 'bench-delta', version },
      platforms: ['linux/amd64'],
      images: tags.map((tag, i) => `${repository(i)}:${tag}`),
      charts: chartVersions.map((v, c) => ({
        name: `chart-${c}`,
        version: v,
        repo: 'https://charts.example.org/stable',
      })),
      stages: [{ name: 'platform', path: `./${version}/platform` }],
    })
    return { version, change, definition }
  }
  return {
    uniqueBytes,
    releases: [
      release('1.0.0', '(base, full)', false, false),
      release('1.0.1', 'one image', true, false),
      release('1.0.2', 'one chart', false, true),
      release('1.1.0', 'image + chart', true, true),
    ],
  }
}

function chartImages(chart: number): string[] {
  return [2 * chart, 2 * chart + 1].map((i) => `${repository(i)}:1.0`)
}

/** The one stage: stage.yaml installs the charts; apps.yaml has a Deployment for each image no chart renders. */
function writeStage(dir: string, tags: string[], chartVersions: string[]): void {
  mkdirSync(dir, { recursive: true })
  const charts = chartVersions.map(
    (v, c) => `  - {chart: chart-${c}, version: ${v}, release: chart-${c}, namespace: bench}`,
  )
  writeFileSync(
    join(dir, 'stage.yaml'),
    `apiVersion: airgap.astrago.io/v1alpha1\nkind: Stage\ntimeout: 5m\nnamespace: bench\ncharts:\n${charts.join('\n')}\n`,
  )
  const deployments = tags.slice(IN_CHARTS).map((tag, k) => {
    const i = IN_CHARTS + k
    const name = `app-${String(i).padStart(2, '0')}`
    return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: bench}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers: [{name: app, image: ${repository(i)}:${tag}}]
`
  })
  writeFileSync(join(dir, 'apps.yaml'), deployments.join('---\n'))
}
