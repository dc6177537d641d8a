import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from './cli.js'
import { pushImage } from './images.js'
import { startRegistry, type TestRegistry } from './registry.js'

export interface OneImageBundle {
  /** The registry the image was bundled from (the caller stops it). */
  upstream: TestRegistry
  /** The bundle file. */
  bundle: string
  /** The image's manifest digest. */
  digest: string
}

/**
 * A bundle of one synthetic image (one layer of `size` bytes) made by the built CLI in `work`, from a fresh registry
 * mirrored under the image's upstream host: the fixture of the tests that serve, push or inspect a small bundle.
 */
export async function bundleOneImage(
  work: string,
  options: { image: string; size: number; name: string; version: string; args?: string[] },
): Promise<OneImageBundle> {
  const [host] = options.image.split('/') as [string]
  const at = options.image.lastIndexOf(':')
  const upstream = await startRegistry()
  const pushed = await pushImage(upstream, {
    repository: options.image.slice(0, at),
    tag: options.image.slice(at + 1),
    layers: [{ seed: options.name, size: options.size }],
  })
  const definition = join(work, `${options.name}.yaml`)
  writeFileSync(
    definition,
    JSON.stringify({
      apiVersion: 'airgap.astrago.io/v1alpha1',
      kind: 'Bundle',
      metadata: { name: options.name, version: options.version },
      images: [options.image],
    }),
  )
  const bundled = await runCli([
    'bundle',
    definition,
    '--output-dir',
    work,
    '--json',
    '--mirror',
    `${host}=${upstream.url}/${host}`,
    ...(options.args ?? []),
  ])
  if (bundled.code !== 0) {
    await upstream.stop()
    throw new Error(`bundle failed (${bundled.code}): ${bundled.stderr}`)
  }
  return { upstream, bundle: bundled.result.path, digest: pushed.digest }
}
