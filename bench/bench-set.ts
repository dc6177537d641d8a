import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pushImage } from '../test/support/images.js'
import { startRegistry } from '../test/support/registry.js'
import { formatSize, GiB, log } from './support.js'

/**
 * The synthetic image set the serve and push benchmarks share: `images` uncompressed images of two layers each,
 * about `gb` GiB of unique layers, seeded into a distribution v3 registry whose storage folder is kept, then bundled
 * with the built CLI. The registry is stopped afterwards; its storage folder can be served again by distribution.
 */
export const ROOT = join(import.meta.dirname, '..')

export interface BenchBlob {
  digest: string
  repository: string
  size: number
}

export interface BenchSet {
  /** The bundle to serve; with `delta`, the delta, read together with `base`. */
  bundle: string
  base?: string
  storageDir: string
  blobs: BenchBlob[]
  total: number
}

export async function makeBenchSet(
  work: string,
  gb: number,
  images: number,
  options: { delta?: boolean } = {},
): Promise<BenchSet> {
  const storageDir = join(work, 'storage')
  const seeder = await startRegistry({ flavor: 'distribution-v3', storageDir })
  try {
    log(`seeding ${images} images, about ${gb} GiB, into ${seeder.url}`)
    const unit = (gb * GiB) / (2 * images)
    const references: string[] = []
    const blobs: BenchBlob[] = []
    for (let i = 0; i < images; i++) {
      const repository = `docker.io/bench/serve-${String(i).padStart(3, '0')}`
      const vary = 0.75 + 0.5 * ((i * 0.6180339887) % 1)
      const pushed = await pushImage(seeder, {
        repository,
        tag: '1.0',
        gzip: false,
        layers: [
          { seed: `serve-${i}-a`, size: Math.round(1.5 * unit * vary) },
          { seed: `serve-${i}-b`, size: Math.round(0.5 * unit * vary) },
        ],
      })
      const manifest = pushed.manifests[0]!
      for (const layer of manifest.layers) blobs.push({ digest: layer.digest, repository, size: layer.size })
      const res = await fetch(`${seeder.url}/v2/${repository}/manifests/${manifest.digest}`, {
        headers: { accept: manifest.mediaType },
      })
      const config = ((await res.json()) as { config: { digest: string; size: number } }).config
      blobs.push({ digest: config.digest, repository, size: config.size })
      references.push(`${repository}:1.0`)
    }
    const total = blobs.reduce((sum, b) => sum + b.size, 0)
    log(`${blobs.length} blobs, ${formatSize(total)}; bundling`)
    const bundleOf = (name: string, version: string, refs: string[], extra: string[] = []): string => {
      const definition = join(work, `${name}-${version}.json`)
      writeFileSync(
        definition,
        JSON.stringify({
          apiVersion: 'airgap.astrago.io/v1alpha1',
          kind: 'Bundle',
          metadata: { name, version },
          platforms: ['linux/amd64'],
          images: refs,
        }),
      )
      const out = join(work, `bundle-${version}`)
      mkdirSync(out)
      const result = execFileSync(
        process.execPath,
        [
          join(ROOT, 'bin', 'run.js'),
          'bundle',
          definition,
          '--output-dir',
          out,
          '--mirror',
          `docker.io=${seeder.url}/docker.io`,
          '--insecure-registry',
          seeder.host,
          '--json',
          ...extra,
        ],
        { encoding: 'utf8', maxBuffer: 64 << 20 },
      )
      return (JSON.parse(result.trim().split('\n').pop()!) as { result: { path: string } }).result.path
    }
    if (!options.delta)
      return { bundle: bundleOf('bench-serve', '1.0.0', references), storageDir, blobs, total }
    // A delta 1.1.0 on a base 1.0.0 that holds the first half of the images: served together, the blobs come from both.
    const base = bundleOf('bench-serve', '1.0.0', references.slice(0, Math.ceil(references.length / 2)))
    const bundle = bundleOf('bench-serve', '1.1.0', references, ['--base', base])
    return { bundle, base, storageDir, blobs, total }
  } finally {
    await seeder.stop()
  }
}
