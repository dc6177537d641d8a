/**
 * bundle.json: what a bundle holds, resolved to digests (the lock), and the inventory of every member. It is the first
 * member of the tar, so `inspect` reads it without touching the rest.
 */
export const BUNDLE_FORMAT = 'astrago-airgap.bundle/v1'

/** bundle.json's bytes as every bundle writes them: indented JSON and a final newline. */
export function serializeBundleJson(metadata: BundleMetadata): Buffer {
  return Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`)
}

export interface BundleMetadata {
  format: typeof BUNDLE_FORMAT
  name: string
  version: string
  description?: string
  /** The tool that wrote the bundle. */
  createdBy: string
  platforms: string[]
  images: LockedImage[]
  charts: LockedChart[]
  files: LockedFile[]
  /** The self-contained installer carried as the `installer` member (absent when the bundle carries none). */
  installer?: LockedInstaller
  /** Package repositories (absent in bundles written before they existed). */
  packages?: LockedPackageRepository[]
  stages: LockedStage[]
  /** Every member of the tar except bundle.json itself and its signature, in tar order. */
  members: Member[]
  totals: {
    /** Bytes of all members (the tar adds headers and padding). */
    contentBytes: number
    /** Bytes images would take if each carried its own copy of shared layers. */
    imageBytesWithoutDedup: number
    /** Bytes of unique blobs actually stored. */
    blobBytes: number
  }
  /** The key that signed bundle.json (absent in an unsigned bundle); see src/bundle/sign-bundle.ts. */
  signature?: BundleSignature
  /**
   * Set in a delta bundle (src/bundle/delta.ts): the bundle it was made on. `members` stays the full inventory; the
   * members the base holds with the same sha256 are left out of the tar and read from the base, which readers are
   * given along with the delta and check against `bundleJson`.
   */
  base?: BundleBase
}

/** The base of a delta bundle. */
export interface BundleBase {
  name: string
  version: string
  /** sha256:<hex> of the base's bundle.json bytes: it pins the base's whole inventory. */
  bundleJson: string
}

/**
 * Who signs bundle.json, written into bundle.json before it is signed. It is a claim, not trust: `verify --key` trusts
 * only the keys it is given; without a key, the public key here shows that the signature member still matches.
 */
export interface BundleSignature {
  /** The signature member: bundle.json.sig, a binary detached OpenPGP signature. */
  member: string
  /** The signing key's fingerprint (40 hex digits, upper case, as gpg prints it). */
  fingerprint: string
  /** The signing key's public key, ASCII-armoured. */
  publicKey: string
}

export interface Member {
  path: string
  size: number
  sha256: string
}

/**
 * The installer: astrago-airgap as one executable (a Node single executable application, scripts/build-installer), so
 * a site without Node runs `tar -xf bundle.tar installer && ./installer install bundle.tar`.
 */
export interface LockedInstaller {
  /** Its member: `installer`, mode 0755, right after bundle.json. */
  path: string
  size: number
  sha256: string
  /** The platform it runs on: linux/amd64 or linux/arm64 (read from its ELF header). */
  platform: string
  /** The astrago-airgap version that wrote the bundle, which the installer is built from. */
  version: string
}

export interface LockedImage {
  /** As the definition (or a chart) named it. */
  source: string
  /** docker.io/library/nginx */
  name: string
  tag?: string
  /** The digest the bundle serves for this image (the tag points to it). */
  digest: string
  /** The digest upstream served; differs from `digest` when platforms were filtered out of an index. */
  upstreamDigest: string
  mediaType: string
  platforms: string[]
  /** Manifests of the selected platforms. */
  manifests: { digest: string; platform: string; size: number }[]
  /** Unique config and layer bytes of this image. */
  size: number
  /** Where the image came from: the definition, or a chart that rendered it. */
  from: string[]
}

export interface LockedChart {
  name: string
  version: string
  appVersion?: string
  /** The chart repository it was downloaded from (absent for a chart from git or a local folder). */
  repo?: string
  /** For a chart from a git repository: where, and the commit its ref resolved to. */
  git?: LockedGitSource
  /** For a chart from a local folder: the folder as the definition names it (the .tgz's sha256 is `sha256`). */
  local?: { path: string }
  /** For a chart the bundle packaged (git, local folder): the dependencies vendored into its charts/. */
  dependencies?: LockedChartDependency[]
  /** sha256 of the .tgz (for a chart from git or a folder, of the archive the bundle packaged) */
  sha256: string
  path: string
  /** The chart as an OCI artifact: charts/<name>:<version> in the bundle's registry. */
  oci: { repository: string; tag: string; digest: string }
  images: string[]
}

export interface LockedGitSource {
  /** The repository URL as the definition names it (not the mirror it may have been fetched through). */
  url: string
  /** The ref as written: a full commit sha, or a branch or tag. */
  ref: string
  /** The full ref name a branch or tag resolved through (refs/heads/main, refs/tags/v1); absent for a sha. */
  refName?: string
  /** The commit the chart was taken from. */
  commit: string
  /** The chart's folder in the repository ("" for its root). */
  path: string
}

export interface LockedChartDependency {
  name: string
  version: string
  /** Where it came from: a chart repository URL, oci://…, or file://… inside the source. */
  repository: string
  alias?: string
  /** Its path in the packaged chart (charts/<name>-<version>.tgz). */
  path: string
  /** sha256 of the vendored archive, when the bundle wrote one. */
  sha256?: string
}

export interface LockedFile {
  url: string
  path: string
  sha256: string
  size: number
}

export interface LockedPackageRepository {
  kind: 'apt' | 'rpm'
  name: string
  /** Its folder in the bundle: repo/<kind>/<name>. */
  path: string
  /** Suite, components, architectures, upstream, the signing key's fingerprint… */
  details: Record<string, string>
  /** What the definition asked for (package requests and kernel headers), as written. */
  requested: string[]
  /** Generated metadata members (indices, signed Release/repomd, public key), relative to `path`. */
  metadata: string[]
  packages: LockedPackage[]
}

export interface LockedPackage {
  name: string
  version: string
  architecture: string
  /** Relative to the repository's folder. */
  path: string
  size: number
  sha256: string
  url: string
  /** Why it is there: the requested package first, then the dependency chain to it. */
  reason?: string[]
}

export interface LockedStage {
  name: string
  files: string[]
}
