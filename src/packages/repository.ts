import { copyFile, link, mkdir, rm, writeFile } from 'node:fs/promises'
import { dirname, join, normalize } from 'node:path'
import { AirgapError } from '../errors.js'

/**
 * What the bundle needs of a package repository, whatever its kind: the generated metadata (indices, the signed
 * Release or repomd.xml, the public key), small enough to hold in memory, and the package files, each with the URL it
 * is fetched from and the size and sha256 the upstream index gives, so the bundle plans their place in the tar before
 * downloading and checks every byte while streaming. A repository lives at repo/<kind>/<name>/ in the bundle, and the
 * site server publishes it at https://<site>/repo/<kind>/<name>/.
 */
export type PackageRepositoryKind = 'apt' | 'rpm'

/** The repository's public key, ASCII-armoured, at the root of every repository (apt also has the binary .gpg). */
export const REPOSITORY_KEY_ARMORED = 'repository-key.asc'

export interface PlannedPackageFile {
  /** Relative to the repository root, e.g. `pool/main/n/nfs-utils/nfs-common_2.6.2-4_amd64.deb`, `Packages/x.rpm`. */
  path: string
  /** Where the bytes come from upstream. */
  url: string
  sha256: string
  size: number
  name: string
  version: string
  architecture: string
  /** The dependency chain that brought it in (the requested package first). */
  reason?: string[]
}

export interface PlannedPackageRepository {
  kind: PackageRepositoryKind
  /** The repository's name in the bundle (repo/<kind>/<name>). */
  name: string
  /** Generated files, relative to the repository root. Deterministic for the same inputs, key and date. */
  metadata: { path: string; bytes: Buffer }[]
  packages: PlannedPackageFile[]
  /**
   * Keyrings every package file must be signed with (an rpm source with `signed: packages`): the bundle checks each
   * package's signature once it is downloaded.
   */
  packageKeyrings?: string[]
  /** What the definition asked for (packages and kernel headers), as written; node-setup.sh installs these. */
  requested?: string[]
  /** Facts for `inspect` and node set-up: suite and components (apt), the upstream URL, the key's fingerprint… */
  details: Record<string, string>
}

/**
 * Writes a planned repository to a directory, whatever its kind: the metadata as planned, and each package file
 * taken from `files` (its `path` → a local file already checked against its sha256), hard-linked when possible,
 * copied otherwise. For tests and tools that serve a repository straight from disk; the bundle writes the same paths
 * into its tar.
 */
export async function writePlannedRepository(
  plan: PlannedPackageRepository,
  dir: string,
  files: Map<string, string>,
): Promise<string[]> {
  const written: string[] = []
  const target = (path: string) => {
    const clean = normalize(path)
    if (clean.startsWith('..') || clean.startsWith('/'))
      throw new AirgapError('E_INPUT', `unsafe repository path ${path} in the plan of ${plan.name}`)
    return join(dir, clean)
  }
  for (const file of plan.metadata) {
    const path = target(file.path)
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, file.bytes)
    written.push(file.path)
  }
  for (const pkg of plan.packages) {
    const source = files.get(pkg.path)
    if (!source)
      throw new AirgapError('E_INPUT', `no local file for ${pkg.path} (${pkg.name} ${pkg.version})`)
    const path = target(pkg.path)
    await mkdir(dirname(path), { recursive: true })
    await rm(path, { force: true })
    await link(source, path).catch(() => copyFile(source, path))
    written.push(pkg.path)
  }
  return written.sort()
}
