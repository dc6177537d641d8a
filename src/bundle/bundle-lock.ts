import type { BundleMetadata } from './metadata.js'
import type { MemberInput } from './plan-layout.js'

/**
 * What resolving a bundle definition yields and writing a bundle file takes: the lock. Everything is pinned (images
 * and blobs by digest, charts and packages by version and sha256, files by sha256 and size) and every member's size
 * is known, so the layout can be planned before a single byte is downloaded.
 */
export interface BundleLock {
  /** bundle.json: the lock and the inventory, as written into the bundle. */
  metadata: BundleMetadata
  /** Every member in its fixed order (bundle.json first), with its bytes or where to fetch them from. */
  members: MemberInput[]
  /** Package repositories whose source signs each package rather than its metadata: checked once they are written. */
  signatureChecks: PackageSignatureCheck[]
}

export interface PackageSignatureCheck {
  /** The repository's folder in the bundle (repo/rpm/<name>). */
  folder: string
  /** Keyrings the packages must be signed by. */
  keyrings: string[]
  /** In the order they were resolved; `path` is relative to the folder. */
  packages: { path: string; name: string; version: string; architecture: string }[]
}

/** A file of the definition with its size known (given, or from a HEAD request). */
export interface ResolvedFile {
  url: string
  path: string
  sha256: string
  size: number
}
