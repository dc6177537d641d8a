import { buildRepoIndex } from '../charts/repo-writer.js'
import type { HttpClient } from '../net/http.js'
import { buildChartArtifact } from '../oci/chart-artifact.js'
import { MediaType } from '../oci/media-types.js'
import { formatImageReference, parseImageReference } from '../oci/reference.js'
import type { RegistryClient } from '../oci/registry-client.js'
import type { PlannedPackageRepository } from '../packages/repository.js'
import type { BundleSpec } from '../spec/types.js'
import type { BundleLock, ResolvedFile } from './bundle-lock.js'
import {
  BUNDLE_JSON,
  blobPath,
  CHARTS_INDEX,
  chartFileName,
  chartPath,
  chartRepository,
  filePath,
  INSTALLER,
  OCI_INDEX,
  OCI_LAYOUT_FILE,
  packageRepositoryPath,
  stageFilePath,
} from './layout.js'
import {
  BUNDLE_FORMAT,
  type BundleMetadata,
  type LockedChart,
  type LockedImage,
  type LockedPackageRepository,
  type Member,
  serializeBundleJson,
} from './metadata.js'
import { bytesMember, type MemberInput } from './plan-layout.js'
import type { PreparedChart } from './resolve-charts.js'
import type { ResolvedImage } from './resolve-images.js'
import type { PreparedInstaller } from './resolve-installer.js'
import { localFileSource, registryBlobSource, urlSource } from './sources.js'
import type { StageFiles } from './stage-files.js'

/**
 * The last step of resolving a bundle: everything resolved becomes the lock, the members in a fixed order (bundle.json,
 * the installer, the OCI layout with its index and deduplicated blobs, charts and their repository index, files,
 * package repositories, stages) and bundle.json itself, which describes them all.
 */
export interface AssembleInputs {
  spec: BundleSpec
  /** Where remote blobs and files are fetched from when the bundle is written. */
  registry: RegistryClient
  http: HttpClient
  toolVersion: string
  images: ResolvedImage[]
  charts: PreparedChart[]
  files: ResolvedFile[]
  repositories: PlannedPackageRepository[]
  stages: StageFiles[]
  installer: PreparedInstaller | undefined
}

export function assembleLock(inputs: AssembleInputs): BundleLock {
  const { spec, registry, http, toolVersion, images, charts, files, repositories, stages, installer } = inputs
  const blobs = new Map<string, MemberInput>()
  const addBytesBlob = (digest: string, bytes: Buffer) => {
    if (!blobs.has(digest)) blobs.set(digest, bytesMember(blobPath(digest), bytes))
  }
  const indexEntries: {
    mediaType: string
    digest: string
    size: number
    annotations: Record<string, string>
  }[] = []
  const lockedImages: LockedImage[] = []
  let withoutDedup = 0
  for (const image of images) {
    for (const doc of image.documents) addBytesBlob(doc.digest, doc.bytes)
    let imageBytes = 0
    for (const blob of image.blobs) {
      imageBytes += blob.size
      const small = image.fetched.get(blob.digest)
      if (small) addBytesBlob(blob.digest, small)
      else if (!blobs.has(blob.digest)) {
        blobs.set(blob.digest, {
          path: blobPath(blob.digest),
          size: blob.size,
          sha256: blob.digest.slice('sha256:'.length),
          content: {
            kind: 'remote',
            source: registryBlobSource(
              registry,
              { registry: image.ref.registry, repository: image.ref.repository },
              blob.digest,
            ),
          },
        })
      }
    }
    withoutDedup += imageBytes
    const reference = image.tag ? `${image.name}:${image.tag}` : `${image.name}@${image.upstreamDigest}`
    const top = image.documents[0]!
    indexEntries.push({
      mediaType: top.mediaType,
      digest: top.digest,
      size: top.bytes.length,
      annotations: { 'org.opencontainers.image.ref.name': reference, 'io.containerd.image.name': reference },
    })
    lockedImages.push({
      source: image.source,
      name: image.name,
      ...(image.tag ? { tag: image.tag } : {}),
      digest: image.digest,
      upstreamDigest: image.upstreamDigest,
      mediaType: image.mediaType,
      platforms: image.platforms,
      manifests: image.manifests,
      size: imageBytes,
      from: image.from,
    })
  }

  const lockedCharts: LockedChart[] = []
  const chartMembers: MemberInput[] = []
  for (const chart of charts) {
    const artifact = buildChartArtifact(chart.bytes, chart.metadata)
    addBytesBlob(artifact.configDigest, artifact.config)
    addBytesBlob(artifact.chartDigest, chart.bytes)
    addBytesBlob(artifact.manifestDigest, artifact.manifest)
    const repository = chartRepository(chart.metadata.name)
    const reference = `${repository}:${chart.metadata.version}`
    indexEntries.push({
      mediaType: MediaType.ociManifest,
      digest: artifact.manifestDigest,
      size: artifact.manifest.length,
      annotations: {
        'org.opencontainers.image.ref.name': reference,
        'io.astrago.airgap.chart': chart.metadata.name,
      },
    })
    chartMembers.push(bytesMember(chartPath(chart.metadata.name, chart.metadata.version), chart.bytes))
    lockedCharts.push({
      name: chart.metadata.name,
      version: chart.metadata.version,
      ...(chart.metadata.appVersion ? { appVersion: chart.metadata.appVersion } : {}),
      ...('repo' in chart.spec ? { repo: chart.spec.repo } : {}),
      ...chart.source,
      sha256: chart.sha256,
      path: chartPath(chart.metadata.name, chart.metadata.version),
      oci: { repository, tag: chart.metadata.version, digest: artifact.manifestDigest },
      images: chart.images.map((i) => formatImageReference(parseImageReference(i.ref))),
    })
  }
  const chartsIndex = buildRepoIndex(
    charts.map((c) => ({
      name: c.metadata.name,
      version: c.metadata.version,
      appVersion: c.metadata.appVersion,
      description: c.metadata.description,
      apiVersion: c.metadata.apiVersion,
      digest: c.sha256,
      fileName: chartFileName(c.metadata.name, c.metadata.version),
    })),
  )

  indexEntries.sort((a, b) => {
    const x = a.annotations['org.opencontainers.image.ref.name']!
    const y = b.annotations['org.opencontainers.image.ref.name']!
    return x < y ? -1 : x > y ? 1 : 0
  })
  const ociIndex = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: indexEntries }, null, 2),
  )
  const ociLayout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  // Small blobs first (manifests, configs, charts), then layers by digest: deterministic, and the small ones cluster.
  const blobList = [...blobs.values()].sort((a, b) =>
    a.content.kind !== b.content.kind
      ? a.content.kind === 'bytes'
        ? -1
        : 1
      : a.path < b.path
        ? -1
        : a.path > b.path
          ? 1
          : 0,
  )
  const fileMembers: MemberInput[] = files.map((f) => ({
    path: filePath(f.path),
    size: f.size,
    sha256: f.sha256,
    content: { kind: 'remote', source: urlSource(http, f.url) },
  }))
  const lockedRepositories: LockedPackageRepository[] = []
  const packageMembers: MemberInput[] = []
  for (const repository of repositories) {
    const folder = packageRepositoryPath(repository.kind, repository.name)
    const metadataFiles = [...repository.metadata].sort((a, b) => compareText(a.path, b.path))
    for (const file of metadataFiles) packageMembers.push(bytesMember(`${folder}/${file.path}`, file.bytes))
    const packages = [...repository.packages].sort((a, b) => compareText(a.path, b.path))
    for (const pkg of packages) {
      packageMembers.push({
        path: `${folder}/${pkg.path}`,
        size: pkg.size,
        sha256: pkg.sha256,
        content: { kind: 'remote', source: urlSource(http, pkg.url) },
      })
    }
    lockedRepositories.push({
      kind: repository.kind,
      name: repository.name,
      path: folder,
      requested: repository.requested ?? [],
      details: repository.details,
      metadata: metadataFiles.map((f) => f.path),
      packages: packages.map((p) => ({
        name: p.name,
        version: p.version,
        architecture: p.architecture,
        path: p.path,
        size: p.size,
        sha256: p.sha256,
        url: p.url,
        ...(p.reason ? { reason: p.reason } : {}),
      })),
    })
  }
  const stageMembers = stages.flatMap((s) =>
    s.files.map((f) => bytesMember(stageFilePath(s.name, f.relative), f.bytes)),
  )

  const rest: MemberInput[] = [
    ...(installer
      ? [
          {
            path: INSTALLER,
            size: installer.locked.size,
            sha256: installer.locked.sha256,
            mode: 0o755,
            content: { kind: 'remote', source: localFileSource(installer.file) },
          } satisfies MemberInput,
        ]
      : []),
    bytesMember(OCI_LAYOUT_FILE, ociLayout),
    bytesMember(OCI_INDEX, ociIndex),
    ...blobList,
    bytesMember(CHARTS_INDEX, Buffer.from(chartsIndex)),
    ...chartMembers,
    ...fileMembers,
    ...packageMembers,
    ...stageMembers,
  ]
  const inventory: Member[] = rest.map((m) => ({ path: m.path, size: m.size, sha256: m.sha256 }))
  const metadata: BundleMetadata = {
    format: BUNDLE_FORMAT,
    name: spec.metadata.name,
    version: spec.metadata.version,
    ...(spec.metadata.description ? { description: spec.metadata.description } : {}),
    createdBy: `astrago-airgap ${toolVersion}`,
    platforms: spec.platforms,
    ...(installer ? { installer: installer.locked } : {}),
    images: lockedImages,
    charts: lockedCharts,
    files: files.map((f) => ({ url: f.url, path: filePath(f.path), sha256: f.sha256, size: f.size })),
    ...(lockedRepositories.length ? { packages: lockedRepositories } : {}),
    stages: stages.map((s) => ({
      name: s.name,
      files: s.files.map((f) => stageFilePath(s.name, f.relative)),
    })),
    members: inventory,
    totals: {
      contentBytes: inventory.reduce((a, m) => a + m.size, 0),
      imageBytesWithoutDedup: withoutDedup,
      blobBytes: blobList.reduce((a, m) => a + m.size, 0),
    },
  }
  const bundleJson = serializeBundleJson(metadata)
  const signatureChecks = repositories
    .filter((r) => r.packageKeyrings?.length)
    .map((r) => ({
      folder: packageRepositoryPath(r.kind, r.name),
      keyrings: r.packageKeyrings!,
      packages: r.packages.map((p) => ({
        path: p.path,
        name: p.name,
        version: p.version,
        architecture: p.architecture,
      })),
    }))
  return { members: [bytesMember(BUNDLE_JSON, bundleJson), ...rest], metadata, signatureChecks }
}

const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
