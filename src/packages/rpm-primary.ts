import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'
import { AirgapError } from '../errors.js'
import { decompress } from './decompress.js'
import { type RpmDependency, type RpmPackage, rpmChecksumOf } from './rpm-package.js'
import { readPackageBlocks } from './rpm-package-blocks.js'
import type { RpmFlags } from './rpm-version.js'
import { detachString, StringPool } from './string-pool.js'
import { decodeXmlText, parseXmlAttributes } from './xml-scanner.js'

/**
 * Reading primary.xml, the packages of an rpm-md repository with their dependencies and the files primary carries,
 * streamed one `<package>` block at a time.
 */

function dependencyOf(attributes: Record<string, string>, pool: StringPool): RpmDependency {
  const dep: RpmDependency = { name: pool.get(attributes.name ?? '') }
  if (attributes.flags) {
    dep.flags = attributes.flags as RpmFlags
    dep.evr = {
      epoch: Number(attributes.epoch ?? '0') || 0,
      version: pool.get(attributes.ver ?? ''),
      release: pool.get(attributes.rel ?? ''),
    }
  }
  if (attributes.pre === '1' || attributes.pre === 'true') dep.pre = true
  return dep
}

const DEPENDENCY_LISTS: Record<string, 'requires' | 'provides' | 'conflicts' | 'obsoletes'> = {
  'rpm:requires': 'requires',
  'rpm:provides': 'provides',
  'rpm:conflicts': 'conflicts',
  'rpm:obsoletes': 'obsoletes',
}

export interface ParsePrimaryOptions {
  /** Keep each package's raw XML in `raw` (default true); otherwise `raw` is empty, to save memory on big indices. */
  raw?: boolean
  /** Shared across the packages of one document. */
  pool?: StringPool
}

/**
 * The elements of a primary.xml package that matter here. primary's vocabulary places each at one depth only
 * (`<name>`, `<version>`, `<checksum>`, `<size>`, `<location>` under `<package>`, `<file>` and the dependency lists
 * under `<format>`), so they are found by name without building the tree: a 150 MB primary.xml parses in a few
 * seconds. Text content holds no `<` (it would be `&lt;`); CDATA and comments, which createrepo does not write, are
 * removed first.
 */
const PRIMARY_TAG =
  /<(\/?)(name|arch|version|checksum|size|location|file|rpm:provides|rpm:requires|rpm:conflicts|rpm:obsoletes|rpm:recommends|rpm:suggests|rpm:supplements|rpm:enhances|rpm:entry)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/g

/** Parses one `<package type="rpm">` block of primary.xml. */
export function parsePrimaryPackage(raw: string, options: ParsePrimaryOptions = {}): RpmPackage {
  const pool = options.pool ?? new StringPool()
  const pkg: RpmPackage = {
    name: '',
    arch: '',
    epoch: 0,
    version: '',
    release: '',
    checksum: { type: '', value: '' },
    size: 0,
    location: '',
    requires: [],
    provides: [],
    conflicts: [],
    obsoletes: [],
    files: [],
    raw: options.raw === false ? '' : detachString(raw),
  }
  const type = /^<package\b[^>]*?\btype\s*=\s*["']([^"']*)["']/.exec(raw)?.[1]
  if (type && type !== 'rpm')
    throw new AirgapError('E_INPUT', `primary.xml: unsupported package type ${type}`)
  const xml = raw.includes('<!') ? raw.replace(/<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->/g, '') : raw
  const textAfter = (index: number, element: string): string => {
    const end = xml.indexOf('<', index)
    if (end < 0 || !xml.startsWith(`</${element}>`, end))
      throw new AirgapError('E_INPUT', `malformed XML: <${element}> is not closed in ${raw.slice(0, 200)}`)
    return decodeXmlText(xml.slice(index, end).trim())
  }
  let list: RpmDependency[] | undefined
  PRIMARY_TAG.lastIndex = 0
  for (let m = PRIMARY_TAG.exec(xml); m; m = PRIMARY_TAG.exec(xml)) {
    const [, closing, element, rest] = m as unknown as [string, string, string, string]
    const selfClosing = rest.endsWith('/')
    if (closing) {
      if (element.startsWith('rpm:') && element !== 'rpm:entry') list = undefined
      continue
    }
    const after = PRIMARY_TAG.lastIndex
    switch (element) {
      case 'name':
        pkg.name = pool.get(selfClosing ? '' : textAfter(after, element))
        break
      case 'arch':
        pkg.arch = pool.get(selfClosing ? '' : textAfter(after, element))
        break
      case 'version': {
        const attributes = parseXmlAttributes(rest)
        pkg.epoch = Number(attributes.epoch ?? '0') || 0
        pkg.version = pool.get(attributes.ver ?? '')
        pkg.release = pool.get(attributes.rel ?? '')
        break
      }
      case 'checksum': {
        const checksum = rpmChecksumOf(parseXmlAttributes(rest), selfClosing ? '' : textAfter(after, element))
        pkg.checksum = { type: pool.get(checksum.type), value: detachString(checksum.value) }
        break
      }
      case 'size':
        pkg.size = Number(parseXmlAttributes(rest).package ?? '0')
        break
      case 'location': {
        const attributes = parseXmlAttributes(rest)
        pkg.location = detachString(attributes.href ?? '')
        if (attributes['xml:base']) pkg.locationBase = pool.get(attributes['xml:base'])
        break
      }
      case 'file':
        if (!selfClosing) pkg.files.push(pool.get(textAfter(after, element)))
        break
      case 'rpm:entry': {
        if (!list) break
        // Identical entries (same attribute text) share one object.
        let dep = pool.dependencies.get(rest)
        if (!dep) {
          dep = dependencyOf(parseXmlAttributes(rest), pool)
          pool.dependencies.set(detachString(rest), dep)
        }
        list.push(dep)
        break
      }
      default: {
        const key = DEPENDENCY_LISTS[element]
        list = selfClosing ? undefined : key ? pkg[key] : []
      }
    }
  }
  if (!pkg.name || !pkg.arch || !pkg.location)
    throw new AirgapError(
      'E_INPUT',
      `primary.xml: a package without name, arch or location: ${raw.slice(0, 200)}`,
    )
  return pkg
}

/** Reads primary.xml (already decompressed) package by package. Returns the count. */
export async function readPrimary(
  input: Readable,
  onPackage: (pkg: RpmPackage) => void,
  options: { raw?: boolean } = {},
): Promise<number> {
  const parse: ParsePrimaryOptions = {
    pool: new StringPool(),
    ...(options.raw === false ? { raw: false } : {}),
  }
  return await readPackageBlocks(input, (raw) => onPackage(parsePrimaryPackage(raw, parse)))
}

const CHECKSUM = /<checksum\b[^>]*>\s*([0-9a-fA-F]+)\s*<\/checksum>/

/** The raw `<package>` blocks of primary.xml for some pkgids (a second pass after reading it with `raw: false`). */
export async function readPrimaryBlocks(input: Readable, pkgids: Set<string>): Promise<Map<string, string>> {
  const blocks = new Map<string, string>()
  await readPackageBlocks(input, (raw) => {
    const pkgid = CHECKSUM.exec(raw)?.[1]?.toLowerCase()
    if (pkgid && pkgids.has(pkgid)) blocks.set(pkgid, detachString(raw))
  })
  return blocks
}

/** Reads a local (possibly compressed) primary.xml. */
export async function readPrimaryFile(
  path: string,
  name = path,
  options: { raw?: boolean } = {},
): Promise<RpmPackage[]> {
  const packages: RpmPackage[] = []
  await readPrimary(
    decompress(name, createReadStream(path, { highWaterMark: 1 << 18 })),
    (pkg) => packages.push(pkg),
    options,
  )
  return packages
}
