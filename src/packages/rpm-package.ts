import type { RpmEvr, RpmFlags } from './rpm-version.js'

/**
 * The packages of an rpm-md repository as its metadata describes them: a primary.xml package with its dependencies
 * and the files primary carries, and the raw block of a package in filelists.xml or other.xml, keyed by pkgid (the
 * package checksum).
 */

export interface RpmChecksum {
  /** As written: sha256, sha512, sha1, md5… */
  type: string
  value: string
}

export interface RpmDependency {
  name: string
  flags?: RpmFlags
  /** The EVR of a versioned entry (epoch 0 when not written). */
  evr?: RpmEvr
  /** `pre="1"`: needed before the package's scriptlets run (Requires(pre), (post)…). */
  pre?: boolean
}

export interface RpmPackage {
  name: string
  arch: string
  epoch: number
  version: string
  release: string
  /** The package checksum; its value is the pkgid that keys filelists and other. */
  checksum: RpmChecksum
  /** Size of the .rpm file. */
  size: number
  /** Where the .rpm is, relative to the repository root (or to `locationBase` when given). */
  location: string
  /** `xml:base` of the location, when the package lives elsewhere. */
  locationBase?: string
  requires: RpmDependency[]
  provides: RpmDependency[]
  conflicts: RpmDependency[]
  obsoletes: RpmDependency[]
  /** The `<file>` entries of primary (binaries, /etc, and paths other packages require). */
  files: string[]
  /** The `<package>…</package>` text as it was in primary.xml. */
  raw: string
}

export interface RpmPackageBlock {
  pkgid: string
  name: string
  arch: string
  /** The `<package>…</package>` text as it was. */
  raw: string
}

/** `name-[epoch:]version-release.arch`, as dnf prints it. */
export function rpmNevra(pkg: Pick<RpmPackage, 'name' | 'epoch' | 'version' | 'release' | 'arch'>): string {
  return `${pkg.name}-${pkg.epoch ? `${pkg.epoch}:` : ''}${pkg.version}-${pkg.release}.${pkg.arch}`
}

export function rpmEvrOf(pkg: Pick<RpmPackage, 'epoch' | 'version' | 'release'>): RpmEvr {
  return { epoch: pkg.epoch, version: pkg.version, release: pkg.release }
}

/** A `<checksum type="…">` element: the type and the hex value, lower-cased. */
export function rpmChecksumOf(attributes: Record<string, string>, text: string): RpmChecksum {
  return { type: (attributes.type ?? '').toLowerCase(), value: text.trim().toLowerCase() }
}
