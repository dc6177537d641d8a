import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { AirgapError } from '../errors.js'
import { decompress } from './decompress.js'
import type { RpmEvr, RpmFlags } from './rpm-version.js'

/**
 * Reading rpm-md repository metadata as createrepo_c writes it: repodata/repomd.xml (which metadata files exist, with
 * their checksums and sizes), primary.xml (the packages with their dependencies and the files primary carries),
 * filelists.xml (every file of every package) and other.xml (changelogs), the last three keyed by pkgid (the
 * package checksum). The readers stream: a document is scanned one `<package>` block at a time, and each block's raw
 * XML text is kept so a writer can emit a subset of the repository without re-serialising it.
 *
 * There is no XML library here, only a scanner for the regular, machine-written XML of createrepo: elements,
 * attributes (single or double quotes), text, CDATA, comments; entities `&amp; &lt; &gt; &quot; &apos;` and numeric
 * character references are decoded. Namespace prefixes are kept in names (`rpm:entry`).
 */

export interface RpmChecksum {
  /** As written: sha256, sha512, sha1, md5… */
  type: string
  value: string
}

export interface RepomdData {
  /** primary, filelists, other, primary_db, updateinfo, modules, group… */
  type: string
  /** Relative to the repository root, e.g. `repodata/<hex>-primary.xml.gz`. */
  location: string
  checksum: RpmChecksum
  openChecksum?: RpmChecksum
  size?: number
  openSize?: number
  timestamp?: number
}

export interface Repomd {
  revision?: string
  data: RepomdData[]
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

// ---------------------------------------------------------------------------------------------------------------
// The scanner

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, entity: string) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' ? Number.parseInt(entity.slice(2), 16) : Number(entity.slice(1))
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole
    }
    return ENTITIES[entity] ?? whole
  })
}

export function escapeXmlText(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`,
  )
}

export interface XmlToken {
  /** `open` (also reported for self-closing elements, followed by `close`), `close` or `text`. */
  kind: 'open' | 'close' | 'text'
  name: string
  attributes: Record<string, string>
  /** Decoded text (kind `text`). */
  text: string
}

const ATTRIBUTE = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g

function parseAttributes(source: string): Record<string, string> {
  const attributes: Record<string, string> = {}
  if (!source) return attributes
  ATTRIBUTE.lastIndex = 0
  for (let m = ATTRIBUTE.exec(source); m; m = ATTRIBUTE.exec(source))
    attributes[m[1]!] = decodeXmlText(m[2] ?? m[3] ?? '')
  return attributes
}

/**
 * Calls `onToken` for every element start, end and text run of a complete XML fragment. Processing instructions,
 * comments and DOCTYPE are skipped; CDATA becomes text.
 */
export function scanXml(xml: string, onToken: (token: XmlToken) => void): void {
  let i = 0
  const n = xml.length
  while (i < n) {
    const lt = xml.indexOf('<', i)
    if (lt < 0) {
      const text = xml.slice(i)
      if (text.trim()) onToken({ kind: 'text', name: '', attributes: {}, text: decodeXmlText(text) })
      break
    }
    if (lt > i) {
      const text = xml.slice(i, lt)
      if (text.trim()) onToken({ kind: 'text', name: '', attributes: {}, text: decodeXmlText(text) })
    }
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt + 4)
      if (end < 0) throw new AirgapError('E_INPUT', 'malformed XML: unterminated comment')
      i = end + 3
      continue
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      const end = xml.indexOf(']]>', lt + 9)
      if (end < 0) throw new AirgapError('E_INPUT', 'malformed XML: unterminated CDATA')
      onToken({ kind: 'text', name: '', attributes: {}, text: xml.slice(lt + 9, end) })
      i = end + 3
      continue
    }
    if (xml[lt + 1] === '?' || xml[lt + 1] === '!') {
      const end = xml.indexOf('>', lt)
      if (end < 0) throw new AirgapError('E_INPUT', 'malformed XML: unterminated declaration')
      i = end + 1
      continue
    }
    // Find the end of the tag, honouring quoted attribute values (which may contain `>`).
    let j = lt + 1
    let quote = ''
    for (; j < n; j++) {
      const c = xml[j]
      if (quote) {
        if (c === quote) quote = ''
      } else if (c === '"' || c === "'") quote = c
      else if (c === '>') break
    }
    if (j >= n) throw new AirgapError('E_INPUT', 'malformed XML: unterminated tag')
    const inner = xml.slice(lt + 1, j)
    i = j + 1
    if (inner[0] === '/') {
      onToken({ kind: 'close', name: inner.slice(1).trim(), attributes: {}, text: '' })
      continue
    }
    const selfClosing = inner.endsWith('/')
    const body = selfClosing ? inner.slice(0, -1) : inner
    const space = body.search(/\s/)
    const name = space < 0 ? body : body.slice(0, space)
    onToken({ kind: 'open', name, attributes: parseAttributes(space < 0 ? '' : body.slice(space)), text: '' })
    if (selfClosing) onToken({ kind: 'close', name, attributes: {}, text: '' })
  }
}

/** Collects the text of each element of a fragment as it closes: `onElement(path, attributes, text)`. */
function walk(
  xml: string,
  onElement: (path: string[], attributes: Record<string, string>, text: string) => void,
  onOpen?: (path: string[], attributes: Record<string, string>) => void,
): void {
  const path: string[] = []
  const attributes: Record<string, string>[] = []
  const texts: string[] = []
  scanXml(xml, (token) => {
    if (token.kind === 'open') {
      path.push(token.name)
      attributes.push(token.attributes)
      texts.push('')
      onOpen?.(path, token.attributes)
    } else if (token.kind === 'text') {
      if (texts.length) texts[texts.length - 1] += token.text
    } else {
      if (path[path.length - 1] !== token.name)
        throw new AirgapError(
          'E_INPUT',
          `malformed XML: </${token.name}> closes <${path[path.length - 1] ?? 'nothing'}>`,
        )
      onElement(path, attributes[attributes.length - 1]!, texts[texts.length - 1]!)
      path.pop()
      attributes.pop()
      texts.pop()
    }
  })
  if (path.length) throw new AirgapError('E_INPUT', `malformed XML: <${path[path.length - 1]}> is not closed`)
}

// ---------------------------------------------------------------------------------------------------------------
// repomd.xml

function checksumOf(attributes: Record<string, string>, text: string): RpmChecksum {
  return { type: (attributes.type ?? '').toLowerCase(), value: text.trim().toLowerCase() }
}

export function parseRepomd(xml: string): Repomd {
  const repomd: Repomd = { data: [] }
  let current: Partial<RepomdData> | undefined
  let sawRoot = false
  walk(
    xml,
    (path, attributes, text) => {
      const name = path[path.length - 1]!
      if (path.length === 2 && name === 'revision') repomd.revision = text.trim()
      if (!current || path.length !== 3) {
        if (path.length === 2 && name === 'data' && current) {
          if (!current.location || !current.checksum)
            throw new AirgapError('E_INPUT', `repomd.xml: data ${current.type} has no location or checksum`)
          repomd.data.push(current as RepomdData)
          current = undefined
        }
        return
      }
      if (name === 'checksum') current.checksum = checksumOf(attributes, text)
      else if (name === 'open-checksum') current.openChecksum = checksumOf(attributes, text)
      else if (name === 'location') current.location = attributes.href ?? ''
      else if (name === 'size') current.size = Number(text.trim())
      else if (name === 'open-size') current.openSize = Number(text.trim())
      else if (name === 'timestamp') current.timestamp = Number(text.trim())
    },
    (path, attributes) => {
      if (path.length === 1) {
        if (path[0] !== 'repomd')
          throw new AirgapError('E_INPUT', `not a repomd.xml: the root element is <${path[0]}>`)
        sawRoot = true
      }
      if (path.length === 2 && path[1] === 'data') current = { type: attributes.type ?? '' }
    },
  )
  if (!sawRoot) throw new AirgapError('E_INPUT', 'not a repomd.xml: no <repomd> element')
  return repomd
}

// ---------------------------------------------------------------------------------------------------------------
// Package blocks, streamed

/**
 * Splits a stream of rpm-md XML into `<package …>…</package>` blocks (the root element and anything outside the
 * blocks are skipped). Blocks do not nest, and `</package>` cannot occur in text (a `<` there would be `&lt;`).
 */
export async function readPackageBlocks(input: Readable, onBlock: (raw: string) => void): Promise<number> {
  const decoder = new StringDecoder('utf8')
  let buffer = ''
  let count = 0
  const START = /<package[\s>]/g
  const drain = () => {
    let from = 0
    for (;;) {
      START.lastIndex = from
      const start = START.exec(buffer)
      if (!start) {
        // Keep a tail that may hold the beginning of `<package`.
        const keep = buffer.lastIndexOf('<')
        from = keep >= from ? keep : buffer.length
        break
      }
      const end = buffer.indexOf('</package>', start.index)
      if (end < 0) {
        from = start.index
        break
      }
      onBlock(buffer.slice(start.index, end + 10))
      count++
      from = end + 10
    }
    buffer = buffer.slice(from)
  }
  for await (const chunk of input) {
    buffer += typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer)
    drain()
  }
  buffer += decoder.end()
  drain()
  return count
}

/**
 * A copy of `text` that does not share memory with the chunk it was cut from: V8 keeps substrings as slices of their
 * parent, so one package name would pin a whole 256 KiB chunk of primary.xml (and the index all of it).
 */
function detach(text: string): string {
  return text.length < 13 ? text : ` ${text}`.slice(1)
}

/** One detached copy per distinct string: dependency names and versions repeat across thousands of packages. */
export class StringPool {
  private readonly strings = new Map<string, string>()
  /** Dependencies are immutable: one object per distinct entry. */
  readonly dependencies = new Map<string, RpmDependency>()

  get(text: string): string {
    if (text.length < 13) return text
    let pooled = this.strings.get(text)
    if (pooled === undefined) {
      pooled = detach(text)
      this.strings.set(pooled, pooled)
    }
    return pooled
  }
}

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
    raw: options.raw === false ? '' : detach(raw),
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
        const attributes = parseAttributes(rest)
        pkg.epoch = Number(attributes.epoch ?? '0') || 0
        pkg.version = pool.get(attributes.ver ?? '')
        pkg.release = pool.get(attributes.rel ?? '')
        break
      }
      case 'checksum': {
        const checksum = checksumOf(parseAttributes(rest), selfClosing ? '' : textAfter(after, element))
        pkg.checksum = { type: pool.get(checksum.type), value: detach(checksum.value) }
        break
      }
      case 'size':
        pkg.size = Number(parseAttributes(rest).package ?? '0')
        break
      case 'location': {
        const attributes = parseAttributes(rest)
        pkg.location = detach(attributes.href ?? '')
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
          dep = dependencyOf(parseAttributes(rest), pool)
          pool.dependencies.set(detach(rest), dep)
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
    if (pkgid && pkgids.has(pkgid)) blocks.set(pkgid, detach(raw))
  })
  return blocks
}

/** The pkgid, name and arch of a filelists.xml or other.xml `<package>` block (from its start tag alone). */
export function parsePackageBlockHeader(raw: string): RpmPackageBlock {
  const end = raw.indexOf('>')
  const attributes = parseAttributes(raw.slice('<package'.length, end).replace(/\/$/, ''))
  if (!attributes.pkgid)
    throw new AirgapError('E_INPUT', `a package block without pkgid: ${raw.slice(0, 200)}`)
  return {
    pkgid: attributes.pkgid.toLowerCase(),
    name: attributes.name ?? '',
    arch: attributes.arch ?? '',
    raw,
  }
}

/** The `<file>` paths of a filelists.xml package block (directories and ghosts included, as dnf sees them). */
export function filelistPaths(raw: string): string[] {
  const paths: string[] = []
  const FILE = /<file(?:\s[^>]*)?>([^<]*)<\/file>/g
  for (let m = FILE.exec(raw); m; m = FILE.exec(raw)) paths.push(decodeXmlText(m[1]!.trim()))
  return paths
}

export interface ReadFilelistsOptions {
  /** Keep the raw block of these pkgids. */
  pkgids?: Set<string>
  /** Record which pkgids ship these paths. */
  paths?: Set<string>
}

export interface FilelistsResult {
  blocks: Map<string, RpmPackageBlock>
  /** path → pkgids shipping it (only for the paths asked). */
  providers: Map<string, string[]>
  count: number
}

/**
 * Reads filelists.xml (or other.xml, with `paths` unset), keeping only what is asked: the raw blocks of some
 * pkgids, and which packages ship some paths, so a 500 MB filelists never sits in memory.
 */
export async function readFilelists(
  input: Readable,
  options: ReadFilelistsOptions,
): Promise<FilelistsResult> {
  const blocks = new Map<string, RpmPackageBlock>()
  const providers = new Map<string, string[]>()
  const paths = options.paths?.size ? options.paths : undefined
  const count = await readPackageBlocks(input, (raw) => {
    const block = parsePackageBlockHeader(raw)
    if (options.pkgids?.has(block.pkgid))
      blocks.set(block.pkgid, {
        ...block,
        pkgid: detach(block.pkgid),
        name: detach(block.name),
        raw: detach(raw),
      })
    if (paths) {
      for (const path of filelistPaths(raw)) {
        if (!paths.has(path)) continue
        const list = providers.get(path)
        if (list) list.push(detach(block.pkgid))
        else providers.set(detach(path), [detach(block.pkgid)])
      }
    }
  })
  return { blocks, providers, count }
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
