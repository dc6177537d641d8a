import { AirgapError } from '../errors.js'
import { withWholeBodyRetries } from '../net/retry.js'
import { sha256Digest } from './digest.js'
import { type ImageManifest, MediaType } from './media-types.js'
import { parseImageReference } from './reference.js'
import type { RegistryClient } from './registry-client.js'

/**
 * Helm charts as OCI artifacts, the form `helm push` writes and `helm pull oci://…` reads: a manifest whose config is
 * the chart's metadata (application/vnd.cncf.helm.config.v1+json) and whose one layer is the .tgz.
 */
export interface ChartArtifact {
  config: Buffer
  manifest: Buffer
  manifestDigest: string
  configDigest: string
  chartDigest: string
}

export function buildChartArtifact(
  tgz: Buffer,
  metadata: { name: string; version: string; appVersion?: string; description?: string; apiVersion?: string },
): ChartArtifact {
  const config = Buffer.from(
    JSON.stringify({
      name: metadata.name,
      version: metadata.version,
      ...(metadata.description ? { description: metadata.description } : {}),
      ...(metadata.appVersion ? { appVersion: metadata.appVersion } : {}),
      apiVersion: metadata.apiVersion ?? 'v2',
    }),
  )
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.helmChartConfig, digest: sha256Digest(config), size: config.length },
    layers: [{ mediaType: MediaType.helmChartContent, digest: sha256Digest(tgz), size: tgz.length }],
    annotations: {
      'org.opencontainers.image.title': metadata.name,
      'org.opencontainers.image.version': metadata.version,
    },
  }
  const manifestBytes = Buffer.from(JSON.stringify(manifest))
  return {
    config,
    manifest: manifestBytes,
    manifestDigest: sha256Digest(manifestBytes),
    configDigest: sha256Digest(config),
    chartDigest: sha256Digest(tgz),
  }
}

/** Pulls a chart .tgz from an OCI registry (`host/path/name:version`), verified against its digest. */
export async function pullChartArtifact(
  client: RegistryClient,
  reference: string,
  signal?: AbortSignal,
): Promise<Buffer> {
  const ref = parseImageReference(reference)
  const repo = { registry: ref.registry, repository: ref.repository }
  const fetched = await client.getManifest(repo, ref.digest ?? ref.tag!, signal)
  const manifest = JSON.parse(fetched.bytes.toString('utf8')) as ImageManifest
  const layer = manifest.layers?.find((l) => l.mediaType === MediaType.helmChartContent)
  if (!layer) {
    throw new AirgapError(
      'E_REMOTE',
      `${reference} is not a Helm chart (no ${MediaType.helmChartContent} layer).`,
    )
  }
  if (layer.size > 64 << 20) throw new AirgapError('E_REMOTE', `The chart ${reference} is over 64 MiB.`)
  const tgz = await withWholeBodyRetries(
    `the chart ${reference}`,
    async () => {
      const { body } = await client.openBlob(repo, layer.digest, { signal })
      const chunks: Buffer[] = []
      for await (const chunk of body) chunks.push(chunk as Buffer)
      return Buffer.concat(chunks)
    },
    { signal },
  )
  if (sha256Digest(tgz) !== layer.digest) {
    throw new AirgapError('E_INTEGRITY', `The chart ${reference} does not match its digest ${layer.digest}.`)
  }
  return tgz
}
