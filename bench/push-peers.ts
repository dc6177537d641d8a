import { execFileSync } from 'node:child_process'
import { linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { findTool } from '../test/support/tools.js'

/**
 * The peers of the push benchmark: skopeo and crane copying the same images from an OCI image layout on local disk
 * into the registry, one image after the other (one process per image, as a field engineer scripts them). The layout
 * is the bundle's own `oci/` folder, extracted before the timed runs; crane pushes one image per layout folder, so
 * each image gets a folder of hard links to its blobs.
 */
export interface PeerScripts {
  /** A bash script per peer, taking the registry (host:port) as $1. */
  skopeo: string
  crane: string
}

interface Descriptor {
  digest: string
  mediaType: string
  size: number
  annotations?: Record<string, string>
}

export function writePeerScripts(bundle: string, work: string): PeerScripts {
  const layout = join(work, 'layout')
  mkdirSync(layout, { recursive: true })
  execFileSync('tar', ['-xf', bundle, '-C', layout, 'oci'])
  const oci = join(layout, 'oci')
  const blob = (digest: string) => join(oci, 'blobs', 'sha256', digest.replace('sha256:', ''))
  const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8')) as { manifests: Descriptor[] }
  const skopeo = findTool('skopeo')
  const crane = findTool('crane')
  const skopeoLines = ['set -e']
  const craneLines = ['set -e']
  index.manifests.forEach((descriptor, i) => {
    const ref = descriptor.annotations?.['org.opencontainers.image.ref.name']
    if (!ref) return
    const target = `"$1"/${ref}`
    skopeoLines.push(
      `${skopeo} --insecure-policy copy --quiet --dest-tls-verify=false oci:${oci}:${ref} docker://${target}`,
    )
    const one = join(layout, `image-${i}`)
    mkdirSync(join(one, 'blobs', 'sha256'), { recursive: true })
    writeFileSync(join(one, 'oci-layout'), readFileSync(join(oci, 'oci-layout')))
    writeFileSync(join(one, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [descriptor] }))
    const manifest = JSON.parse(readFileSync(blob(descriptor.digest), 'utf8')) as {
      config: Descriptor
      layers: Descriptor[]
    }
    for (const d of [descriptor, manifest.config, ...manifest.layers]) {
      linkSync(blob(d.digest), join(one, 'blobs', 'sha256', d.digest.replace('sha256:', '')))
    }
    craneLines.push(`${crane} push --insecure ${one} ${target} >/dev/null`)
  })
  const scripts = { skopeo: join(work, 'skopeo.sh'), crane: join(work, 'crane.sh') }
  writeFileSync(scripts.skopeo, `${skopeoLines.join('\n')}\n`)
  writeFileSync(scripts.crane, `${craneLines.join('\n')}\n`)
  return scripts
}
