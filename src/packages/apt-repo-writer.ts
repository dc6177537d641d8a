import { createHash } from 'node:crypto'
import { copyFile, link, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { AirgapError } from '../errors.js'
import { type AptPackage, formatPackageStanza } from './apt-index.js'
import { type AptSigningKey, clearsign, detachSign, exportPublicKey } from './apt-signature.js'

/**
 * Writes a flat-pool apt repository that stock apt accepts with `signed-by=<our key>`:
 *
 *   dists/<suite>/InRelease                          clearsigned Release
 *   dists/<suite>/Release, Release.gpg               the same, with a detached signature (for older apt)
 *   dists/<suite>/<component>/binary-<arch>/Packages, Packages.gz
 *   pool/…                                           the .deb files, at the Filename of the upstream index
 *   <keyName>.gpg, <keyName>.asc                     the public key (binary for signed-by, armoured for people)
 *
 * The output is deterministic: stanzas sorted by name, version and architecture, gzip without a timestamp, the
 * Release `Date` and the signature time taken from `date`, and ed25519 signatures (deterministic).
 */

export interface AptRepositoryPackage {
  /** The stanza as read from the upstream index (its Filename is where the file goes under the repository). */
  control: AptPackage
  /** Path of the downloaded .deb, already checked against `control.sha256`. */
  file: string
}

export interface WriteAptRepositoryOptions {
  /** Repository root; created if missing. */
  dir: string
  suite: string
  /** Codename (defaults to the suite). */
  codename?: string
  component?: string
  /** Architectures of the repository; `all` packages are listed in each. */
  architectures: string[]
  packages: AptRepositoryPackage[]
  key: AptSigningKey
  /** Release Date and signature time (default: SOURCE_DATE_EPOCH, else the key's creation time). */
  date?: Date
  origin?: string
  label?: string
  description?: string
  /** Base name of the public key files at the root (default `repository-key`). */
  keyName?: string
  /** Hard-link the .deb files into the pool when on the same file system (default true); otherwise copy. */
  link?: boolean
}

export interface WriteAptRepositoryResult {
  dir: string
  suite: string
  component: string
  /** The public key for `signed-by` (binary) and armoured. */
  publicKeyPath: string
  publicKeyArmoredPath: string
  /** A deb822 source entry for the repository served at `url`. */
  sourcesEntry(url: string, signedBy?: string): string
  files: string[]
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

function formatDate(date: Date): string {
  // RFC 2822 in UTC, as apt expects ("Sat, 10 Jun 2023 08:53:04 UTC").
  return date.toUTCString().replace('GMT', 'UTC')
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

async function placeFile(source: string, target: string, hardLink: boolean): Promise<void> {
  await mkdir(dirname(target), { recursive: true })
  try {
    const existing = await stat(target)
    const original = await stat(source)
    if (existing.size === original.size && existing.ino === original.ino) return
    await rm(target, { force: true })
  } catch {}
  if (hardLink) {
    try {
      await link(source, target)
      return
    } catch {}
  }
  await copyFile(source, target)
}

/** What the repository's metadata is made of: everything of WriteAptRepositoryOptions but where the files are. */
export interface AptRepositoryMetadataOptions
  extends Omit<WriteAptRepositoryOptions, 'dir' | 'packages' | 'link'> {
  packages: AptPackage[]
}

/**
 * The repository's metadata as bytes, relative to its root: the indices, the signed Release (InRelease, Release,
 * Release.gpg) and the public key. The .deb files go at each package's Filename; nothing here reads them.
 */
export async function buildAptRepositoryMetadata(
  options: AptRepositoryMetadataOptions,
): Promise<{ path: string; bytes: Buffer }[]> {
  const component = options.component ?? 'main'
  const codename = options.codename ?? options.suite
  const keyName = options.keyName ?? 'repository-key'
  const date =
    options.date ??
    (process.env.SOURCE_DATE_EPOCH
      ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000)
      : options.key.created)
  const packages = uniquePackages(options.packages)

  const indexFiles: Array<{ path: string; data: Buffer }> = []
  for (const arch of options.architectures) {
    const stanzas = packages
      .filter((pkg) => pkg.architecture === arch || pkg.architecture === 'all')
      .map((pkg) => `${formatPackageStanza(pkg)}\n`)
    const text = Buffer.from(stanzas.join('\n'))
    const base = `${component}/binary-${arch}`
    indexFiles.push({ path: `${base}/Packages`, data: text })
    indexFiles.push({ path: `${base}/Packages.gz`, data: gzipSync(text, { level: 9 }) })
    indexFiles.push({
      path: `${base}/Release`,
      data: Buffer.from(
        `Archive: ${options.suite}\nOrigin: ${options.origin ?? 'astrago-airgap'}\nLabel: ${options.label ?? 'astrago-airgap'}\nComponent: ${component}\nArchitecture: ${arch}\n`,
      ),
    })
  }
  const width = Math.max(...indexFiles.map((f) => String(f.data.length).length))
  const release = [
    `Origin: ${options.origin ?? 'astrago-airgap'}`,
    `Label: ${options.label ?? 'astrago-airgap'}`,
    `Suite: ${options.suite}`,
    `Codename: ${codename}`,
    `Date: ${formatDate(date)}`,
    `Architectures: ${options.architectures.join(' ')}`,
    `Components: ${component}`,
    ...(options.description ? [`Description: ${options.description}`] : []),
    'SHA256:',
    ...indexFiles.map((f) => ` ${sha256(f.data)} ${String(f.data.length).padStart(width)} ${f.path}`),
  ].join('\n')
  const releaseText = `${release}\n`
  const dists = `dists/${options.suite}`
  return [
    ...indexFiles.map((f) => ({ path: `${dists}/${f.path}`, bytes: f.data })),
    { path: `${dists}/Release`, bytes: Buffer.from(releaseText) },
    { path: `${dists}/InRelease`, bytes: Buffer.from(await clearsign(options.key, releaseText, date)) },
    { path: `${dists}/Release.gpg`, bytes: Buffer.from(await detachSign(options.key, releaseText, date)) },
    { path: `${keyName}.gpg`, bytes: await exportPublicKey(options.key) },
    { path: `${keyName}.asc`, bytes: await exportPublicKey(options.key, true) },
  ]
}

/** One stanza per pool file, sorted by name, version and architecture; two different files at one path are refused. */
function uniquePackages(list: AptPackage[]): AptPackage[] {
  const seen = new Map<string, AptPackage>()
  for (const pkg of list) {
    const name = pkg.filename
    if (!/^pool\//.test(name) || name.includes('..') || name.includes('//'))
      throw new AirgapError('E_INPUT', `${pkg.package}: Filename ${name} is not under pool/`)
    const previous = seen.get(name)
    if (previous && previous.sha256 !== pkg.sha256)
      throw new AirgapError('E_INPUT', `two different packages want ${name}`)
    seen.set(name, pkg)
  }
  return [...seen.values()].sort(
    (a, b) =>
      compare(a.package, b.package) ||
      compare(a.version, b.version) ||
      compare(a.architecture, b.architecture),
  )
}

export async function writeAptRepository(
  options: WriteAptRepositoryOptions,
): Promise<WriteAptRepositoryResult> {
  const component = options.component ?? 'main'
  const keyName = options.keyName ?? 'repository-key'
  const files: string[] = []
  const byFilename = new Map(options.packages.map((entry) => [entry.control.filename, entry.file]))
  for (const pkg of uniquePackages(options.packages.map((entry) => entry.control))) {
    await placeFile(byFilename.get(pkg.filename)!, join(options.dir, pkg.filename), options.link !== false)
    files.push(pkg.filename)
  }
  const { dir: _dir, packages: _packages, link: _link, ...rest } = options
  for (const file of await buildAptRepositoryMetadata({
    ...rest,
    packages: options.packages.map((entry) => entry.control),
  })) {
    const path = join(options.dir, file.path)
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, file.bytes)
    files.push(file.path)
  }

  const publicKeyPath = join(options.dir, `${keyName}.gpg`)
  const publicKeyArmoredPath = join(options.dir, `${keyName}.asc`)

  return {
    dir: options.dir,
    suite: options.suite,
    component,
    publicKeyPath,
    publicKeyArmoredPath,
    sourcesEntry: (url, signedBy = publicKeyPath) =>
      [
        'Types: deb',
        `URIs: ${url}`,
        `Suites: ${options.suite}`,
        `Components: ${component}`,
        `Architectures: ${options.architectures.join(' ')}`,
        `Signed-By: ${signedBy}`,
        '',
      ].join('\n'),
    files: files.sort(),
  }
}
