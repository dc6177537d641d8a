import { createHash } from 'node:crypto'
import { basename } from 'node:path'
import { gzipSync } from 'node:zlib'
import { AirgapError } from '../errors.js'
import { type AptSigningKey, detachSign, exportPublicKey } from './apt-signature.js'
import {
  type PlannedPackageFile,
  type PlannedPackageRepository,
  REPOSITORY_KEY_ARMORED,
} from './repository.js'
import { rpmPackageKey } from './rpm-closure.js'
import type { RpmPackage, RpmPackageBlock } from './rpm-package.js'
import { type RpmSource, requireSha256, rpmPackageUrl } from './rpm-source.js'
import { escapeXmlText } from './xml-scanner.js'

/**
 * Plans an rpm-md repository that stock dnf accepts with `repo_gpgcheck=1` and our key:
 *
 *   repodata/repomd.xml                     lists the three files below with sha256, sizes, timestamps
 *   repodata/repomd.xml.asc                 detached armoured signature of repomd.xml (the bundle key)
 *   repodata/<sha256>-primary.xml.gz        the chosen packages' blocks of the upstream primary.xml
 *   repodata/<sha256>-filelists.xml.gz      … of filelists.xml (made from primary's files when upstream lacks it)
 *   repodata/<sha256>-other.xml.gz          … of other.xml (empty entries when not fetched)
 *   repository-key.asc                      the public key, for the .repo file's gpgkey (REPOSITORY_KEY_ARMORED)
 *   Packages/<first letter>/<file>.rpm      the packages
 *
 * The package blocks are the upstream XML text, only their `<location>` rewritten, so every dependency and file
 * dnf reads is exactly upstream's. The output is deterministic: packages sorted by name, EVR and arch, gzip without
 * a timestamp, revision, timestamps and the signature time taken from `date`, ed25519 signatures.
 */

export interface RpmRepositoryContent {
  packages: RpmPackage[]
  /** filelists.xml blocks by pkgid (missing ones are made from primary's `<file>` entries). */
  filelists?: Map<string, RpmPackageBlock>
  /** other.xml blocks by pkgid (missing ones are written empty). */
  other?: Map<string, RpmPackageBlock>
  /** `name.arch` → dependency chain, for PlannedPackageFile.reason. */
  reasons?: Map<string, string[]>
  /** Baseline packages found in the index (only counted, for `details`). */
  baseline?: RpmPackage[]
}

export interface PlanRpmRepositoryOptions {
  /** The repository's name in the bundle (repo/rpm/<name>). */
  name: string
  /** The upstream (the packages' URLs are relative to its baseurl, or to their `xml:base`). */
  source: RpmSource
  /** What to put in it: `resolveRpmPackages`' result fits. */
  resolved: RpmRepositoryContent
  key: AptSigningKey
  /** repomd revision, timestamps and signature time (default: SOURCE_DATE_EPOCH, else the key's creation time). */
  date?: Date
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** `Packages/<first letter, lower case>/<file name>`. */
export function rpmRepositoryPath(pkg: Pick<RpmPackage, 'location'>): string {
  const file = basename(pkg.location)
  if (!file.endsWith('.rpm') || file.startsWith('.') || /[/\\]/.test(file))
    throw new AirgapError('E_INPUT', `unexpected package location ${pkg.location}`)
  return `Packages/${file[0]!.toLowerCase()}/${file}`
}

const LOCATION = /<location\b[^>]*?(?:\/>|>\s*<\/location>)/

function withLocation(raw: string, href: string): string {
  if (!LOCATION.test(raw)) throw new AirgapError('E_INPUT', `a primary.xml package block has no <location>`)
  return raw.replace(LOCATION, `<location href="${escapeXmlText(href)}"/>`)
}

function versionElement(pkg: RpmPackage): string {
  return `<version epoch="${pkg.epoch}" ver="${escapeXmlText(pkg.version)}" rel="${escapeXmlText(pkg.release)}"/>`
}

function packageAttributes(pkg: RpmPackage): string {
  return `pkgid="${pkg.checksum.value}" name="${escapeXmlText(pkg.name)}" arch="${escapeXmlText(pkg.arch)}"`
}

function document(header: string, root: string, count: number, blocks: string[], namespaces: string): Buffer {
  const body = blocks.map((b) => `${b}\n`).join('')
  return Buffer.from(`${header}\n<${root} ${namespaces} packages="${count}">\n${body}</${root}>\n`)
}

/** Plans the repository: generated metadata in memory, the .rpm files as URLs with sha256 and size. */
export async function planRpmRepository(
  options: PlanRpmRepositoryOptions,
): Promise<PlannedPackageRepository> {
  const { resolved: content, key, source } = options
  const date =
    options.date ??
    (process.env.SOURCE_DATE_EPOCH ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000) : key.created)
  const timestamp = Math.floor(date.getTime() / 1000)

  const byPath = new Map<string, RpmPackage>()
  for (const pkg of content.packages) {
    requireSha256(pkg)
    const path = rpmRepositoryPath(pkg)
    const previous = byPath.get(path)
    if (previous && previous.checksum.value !== pkg.checksum.value)
      throw new AirgapError('E_INPUT', `two different packages want ${path}`, {
        data: { path, packages: [previous.name, pkg.name] },
      })
    byPath.set(path, pkg)
  }
  const packages = [...byPath.entries()].sort(
    ([pa, a], [pb, b]) =>
      compare(a.name, b.name) ||
      a.epoch - b.epoch ||
      compare(a.version, b.version) ||
      compare(a.release, b.release) ||
      compare(a.arch, b.arch) ||
      compare(pa, pb),
  )

  const header = '<?xml version="1.0" encoding="UTF-8"?>'
  const primary = document(
    header,
    'metadata',
    packages.length,
    packages.map(([path, pkg]) => withLocation(pkg.raw.trim(), path)),
    'xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"',
  )
  const filelists = document(
    header,
    'filelists',
    packages.length,
    packages.map(([, pkg]) => {
      const block = content.filelists?.get(pkg.checksum.value)
      if (block) return block.raw.trim()
      const files = pkg.files.map((f) => `  <file>${escapeXmlText(f)}</file>\n`).join('')
      return `<package ${packageAttributes(pkg)}>\n  ${versionElement(pkg)}\n${files}</package>`
    }),
    'xmlns="http://linux.duke.edu/metadata/filelists"',
  )
  const other = document(
    header,
    'otherdata',
    packages.length,
    packages.map(([, pkg]) => {
      const block = content.other?.get(pkg.checksum.value)
      if (block) return block.raw.trim()
      return `<package ${packageAttributes(pkg)}>\n  ${versionElement(pkg)}\n</package>`
    }),
    'xmlns="http://linux.duke.edu/metadata/other"',
  )

  const metadata: { path: string; bytes: Buffer }[] = []
  const data: string[] = []
  for (const [type, open] of [
    ['primary', primary],
    ['filelists', filelists],
    ['other', other],
  ] as const) {
    const compressed = gzipSync(open, { level: 9 })
    const digest = sha256(compressed)
    const path = `repodata/${digest}-${type}.xml.gz`
    metadata.push({ path, bytes: compressed })
    data.push(
      [
        `  <data type="${type}">`,
        `    <checksum type="sha256">${digest}</checksum>`,
        `    <open-checksum type="sha256">${sha256(open)}</open-checksum>`,
        `    <location href="${path}"/>`,
        `    <timestamp>${timestamp}</timestamp>`,
        `    <size>${compressed.length}</size>`,
        `    <open-size>${open.length}</open-size>`,
        '  </data>',
      ].join('\n'),
    )
  }
  const repomd = [
    header,
    '<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">',
    `  <revision>${timestamp}</revision>`,
    ...data,
    '</repomd>',
    '',
  ].join('\n')
  metadata.push({ path: 'repodata/repomd.xml', bytes: Buffer.from(repomd) })
  metadata.push({ path: 'repodata/repomd.xml.asc', bytes: Buffer.from(await detachSign(key, repomd, date)) })
  metadata.push({ path: REPOSITORY_KEY_ARMORED, bytes: await exportPublicKey(key, true) })
  metadata.sort((a, b) => compare(a.path, b.path))

  const planned: PlannedPackageFile[] = packages.map(([path, pkg]) => {
    const reason = content.reasons?.get(rpmPackageKey(pkg)) ?? [pkg.name]
    return {
      path,
      url: rpmPackageUrl(source.baseurl, pkg),
      sha256: pkg.checksum.value,
      size: pkg.size,
      name: pkg.name,
      version: `${pkg.epoch ? `${pkg.epoch}:` : ''}${pkg.version}-${pkg.release}`,
      architecture: pkg.arch,
      reason,
    }
  })
  return {
    kind: 'rpm',
    name: options.name,
    metadata,
    packages: planned,
    details: {
      upstream: source.baseurl,
      architectures: source.architectures.join(' '),
      key: key.fingerprint,
      publicKey: REPOSITORY_KEY_ARMORED,
      revision: String(timestamp),
      baseline: String(content.baseline?.length ?? 0),
    },
  }
}

/**
 * A dnf .repo section for the repository served at `url`, checking repomd.xml with our key (`gpgkey`, e.g.
 * `${url}/repository-key.asc` or a file:// path on the node). The .rpm files are checked by the sha256 of the signed
 * metadata; their own signatures are upstream's, so `gpgcheck` is left to the caller (default 0).
 */
export function rpmRepoFile(options: {
  id: string
  url: string
  gpgkey?: string
  gpgcheck?: boolean
  name?: string
  /** The CA the server's certificate is signed by (a file on the node). */
  sslcacert?: string
  /** Comment lines at the top (without "# "). */
  comment?: string[]
}): string {
  return [
    ...(options.comment ?? []).map((line) => `# ${line}`),
    `[${options.id}]`,
    `name=${options.name ?? options.id}`,
    `baseurl=${options.url}`,
    'enabled=1',
    'repo_gpgcheck=1',
    `gpgcheck=${options.gpgcheck ? 1 : 0}`,
    `gpgkey=${options.gpgkey ?? `${options.url.replace(/\/+$/, '')}/repository-key.asc`}`,
    ...(options.sslcacert ? [`sslcacert=${options.sslcacert}`, 'sslverify=1'] : []),
    '',
  ].join('\n')
}
