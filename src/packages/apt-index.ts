import type { Readable } from 'node:stream'
import { AirgapError } from '../errors.js'
import type { VersionOperator } from './deb-version.js'

/**
 * Debian control data (deb822): Release/InRelease files and Packages indices.
 *
 * `parseDeb822` keeps every field of every paragraph (Release files are small). `readPackagesIndex` streams a Packages
 * index (the Debian main index is ~60,000 stanzas, ~45 MB uncompressed) and keeps, per stanza, the fields dependency
 * resolution needs as properties plus the few other fields a repository writer republishes (Section, Maintainer,
 * Installed-Size, the short Description…) as raw text, so memory stays a fraction of the index size.
 */

export type Deb822Paragraph = Map<string, string>

/** Paragraphs of a deb822 document; multi-line values keep their continuation lines (leading space removed). */
export function parseDeb822(text: string): Deb822Paragraph[] {
  const paragraphs: Deb822Paragraph[] = []
  let current: Deb822Paragraph | undefined
  let lastField: string | undefined
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '')
    if (line.trim() === '') {
      current = undefined
      lastField = undefined
      continue
    }
    if (line.startsWith('#')) continue
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!current || !lastField)
        throw new AirgapError('E_INPUT', `deb822: continuation line without a field: ${line}`)
      const previous = current.get(lastField) ?? ''
      current.set(lastField, previous === '' ? line.slice(1) : `${previous}\n${line.slice(1)}`)
      continue
    }
    const colon = line.indexOf(':')
    if (colon <= 0) throw new AirgapError('E_INPUT', `deb822: not a field: ${line}`)
    if (!current) {
      current = new Map()
      paragraphs.push(current)
    }
    lastField = line.slice(0, colon)
    current.set(lastField, line.slice(colon + 1).trim())
  }
  return paragraphs
}

export interface ReleaseFile {
  path: string
  size: number
  sha256: string
}

export interface AptRelease {
  fields: Deb822Paragraph
  suite: string | undefined
  codename: string | undefined
  date: Date | undefined
  validUntil: Date | undefined
  architectures: string[]
  components: string[]
  acquireByHash: boolean
  /** The SHA256 list, by path relative to dists/<suite>/. */
  sha256: Map<string, ReleaseFile>
}

export function parseRelease(text: string): AptRelease {
  const [fields] = parseDeb822(text)
  if (!fields) throw new AirgapError('E_INPUT', 'Release file is empty')
  const sha256 = new Map<string, ReleaseFile>()
  for (const line of (fields.get('SHA256') ?? '').split('\n')) {
    const parts = line.trim().split(/\s+/)
    if (parts.length !== 3) continue
    const [hash, size, path] = parts as [string, string, string]
    if (!/^[0-9a-f]{64}$/i.test(hash)) throw new AirgapError('E_INPUT', `Release: bad SHA256 entry: ${line}`)
    sha256.set(path, { path, size: Number(size), sha256: hash.toLowerCase() })
  }
  const date = (name: string) => {
    const value = fields.get(name)
    if (!value) return undefined
    const parsed = new Date(value)
    return Number.isNaN(parsed.getTime()) ? undefined : parsed
  }
  const words = (name: string) => (fields.get(name) ?? '').split(/\s+/).filter(Boolean)
  return {
    fields,
    suite: fields.get('Suite'),
    codename: fields.get('Codename'),
    date: date('Date'),
    validUntil: date('Valid-Until'),
    architectures: words('Architectures'),
    components: words('Components'),
    acquireByHash: fields.get('Acquire-By-Hash')?.toLowerCase() === 'yes',
    sha256,
  }
}

/** One alternative of a dependency: `name[:arch] [(op version)]`. */
export interface Relation {
  name: string
  /** `any`, `native` or an architecture name, from `name:qualifier`. */
  archQualifier?: string
  operator?: VersionOperator
  version?: string
}

/** A dependency: its alternatives, in order (`a | b`). */
export type RelationGroup = Relation[]

const OPERATORS: Record<string, VersionOperator> = {
  '<<': '<<',
  '<=': '<=',
  '=': '=',
  '>=': '>=',
  '>>': '>>',
  '<': '<=',
  '>': '>=',
}

/** Parses one alternative; architecture restrictions (`[amd64]`) and build profiles (`<!nocheck>`) are dropped. */
export function parseRelation(text: string): Relation {
  const match = /^\s*([^\s:([<]+)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([^)\s]+)\s*\))?/.exec(
    text,
  )
  if (!match) throw new AirgapError('E_INPUT', `not a package relation: "${text.trim()}"`)
  const relation: Relation = { name: match[1]! }
  if (match[2]) relation.archQualifier = match[2]
  if (match[3]) {
    relation.operator = OPERATORS[match[3]]!
    relation.version = match[4]!
  }
  return relation
}

/** Parses a Depends-style field: comma-separated groups of `|`-separated alternatives. */
export function parseRelations(field: string | undefined): RelationGroup[] {
  if (!field) return []
  const groups: RelationGroup[] = []
  for (const group of field.split(',')) {
    if (!group.trim()) continue
    groups.push(group.split('|').map(parseRelation))
  }
  return groups
}

export function formatRelation(relation: Relation): string {
  const name = relation.archQualifier ? `${relation.name}:${relation.archQualifier}` : relation.name
  return relation.operator ? `${name} (${relation.operator} ${relation.version})` : name
}

/** One stanza of a Packages index, reduced to what resolution and republishing need. */
export interface AptPackage {
  package: string
  version: string
  architecture: string
  multiArch: 'same' | 'foreign' | 'allowed' | 'no'
  priority: string | undefined
  essential: boolean
  depends: string | undefined
  preDepends: string | undefined
  provides: string | undefined
  conflicts: string | undefined
  breaks: string | undefined
  filename: string
  size: number
  sha256: string
  /** The other republished fields, as `Field: value` lines in index order (without a trailing newline). */
  extra: string
}

/** Fields kept verbatim in `extra` (Description: only its first line; Description-md5 links the translations). */
const EXTRA_FIELDS = new Set([
  'Source',
  'Installed-Size',
  'Maintainer',
  'Recommends',
  'Suggests',
  'Enhances',
  'Replaces',
  'Section',
  'Homepage',
  'Description',
  'Description-md5',
  'Built-Using',
  'Static-Built-Using',
  'Protected',
  'Important',
])

class StanzaBuilder {
  fields = new Map<string, string>()
  extra: string[] = []

  reset(): void {
    this.fields.clear()
    this.extra = []
  }

  build(): AptPackage | undefined {
    const f = this.fields
    const name = f.get('Package')
    if (!name) return undefined
    const missing =
      f.has('Version') && f.has('Architecture') && f.has('Filename') && f.has('Size') && f.has('SHA256')
        ? []
        : ['Version', 'Architecture', 'Filename', 'Size', 'SHA256'].filter((field) => !f.has(field))
    if (missing.length)
      throw new AirgapError('E_INPUT', `Packages index: ${name} has no ${missing.join(', ')} field`, {
        hints: ['apt indices must carry SHA256 checksums; MD5-only repositories are not accepted.'],
      })
    const multiArch = (f.get('Multi-Arch') ?? 'no').toLowerCase()
    return {
      package: name,
      version: f.get('Version')!,
      architecture: f.get('Architecture')!,
      multiArch:
        multiArch === 'same' || multiArch === 'foreign' || multiArch === 'allowed' ? multiArch : 'no',
      priority: f.get('Priority'),
      essential: f.get('Essential')?.toLowerCase() === 'yes',
      depends: f.get('Depends'),
      preDepends: f.get('Pre-Depends'),
      provides: f.get('Provides'),
      conflicts: f.get('Conflicts'),
      breaks: f.get('Breaks'),
      filename: f.get('Filename')!,
      size: Number(f.get('Size')),
      sha256: f.get('SHA256')!.toLowerCase(),
      extra: this.extra.join('\n'),
    }
  }
}

const CORE_FIELDS = new Set([
  'Package',
  'Version',
  'Architecture',
  'Multi-Arch',
  'Priority',
  'Essential',
  'Depends',
  'Pre-Depends',
  'Provides',
  'Conflicts',
  'Breaks',
  'Filename',
  'Size',
  'SHA256',
])

/** Field names by length and first byte, so a line's field is recognised from its bytes without decoding it. */
const FIELD_LOOKUP = (() => {
  const table = new Map<number, Array<{ name: string; bytes: Buffer }>>()
  for (const name of [...CORE_FIELDS, ...EXTRA_FIELDS]) {
    const bytes = Buffer.from(name, 'latin1')
    const key = (bytes.length << 8) | bytes[0]!
    const list = table.get(key)
    if (list) list.push({ name, bytes })
    else table.set(key, [{ name, bytes }])
  }
  return table
})()

function knownField(buf: Buffer, start: number, colon: number): string | undefined {
  const candidates = FIELD_LOOKUP.get(((colon - start) << 8) | buf[start]!)
  if (!candidates) return undefined
  for (const { name, bytes } of candidates) {
    let i = 1
    while (i < bytes.length && bytes[i] === buf[start + i]) i++
    if (i === bytes.length) return name
  }
  return undefined
}

/**
 * Streams a (decompressed) Packages index, calling `onPackage` per stanza. Continuation lines are folded into their
 * field (Description continuations are dropped). Works on bytes: only the kept fields are decoded, into strings of
 * their own (slices of a chunk would keep the whole chunk alive), so memory is what is kept, not the index size.
 * Lines are capped at 1 MiB.
 */
export async function readPackagesIndex(
  stream: Readable,
  onPackage: (pkg: AptPackage) => void,
): Promise<number> {
  const stanza = new StanzaBuilder()
  let count = 0
  let field: string | undefined
  let keepContinuation = false
  const flush = () => {
    const pkg = stanza.build()
    if (pkg) {
      onPackage(pkg)
      count++
    }
    stanza.reset()
    field = undefined
  }
  const onLine = (buf: Buffer, start: number, end: number) => {
    if (end > start && buf[end - 1] === 13) end--
    if (end === start) {
      flush()
      return
    }
    const first = buf[start]
    if (first === 32 || first === 9) {
      if (field && keepContinuation) {
        const text = buf.toString('utf8', start, end)
        if (CORE_FIELDS.has(field))
          stanza.fields.set(field, `${stanza.fields.get(field) ?? ''} ${text.trim()}`.trim())
        else stanza.extra[stanza.extra.length - 1] += `\n${text}`
      }
      return
    }
    const colon = buf.indexOf(58, start)
    if (colon <= start || colon >= end)
      throw new AirgapError(
        'E_INPUT',
        `Packages index: not a field: ${buf.toString('utf8', start, Math.min(end, start + 200))}`,
      )
    field = knownField(buf, start, colon)
    if (field === undefined) keepContinuation = false
    else if (CORE_FIELDS.has(field)) {
      let from = colon + 1
      let to = end
      while (from < to && (buf[from] === 32 || buf[from] === 9)) from++
      while (to > from && (buf[to - 1] === 32 || buf[to - 1] === 9)) to--
      stanza.fields.set(field, buf.toString('utf8', from, to))
      keepContinuation = true
    } else if (EXTRA_FIELDS.has(field)) {
      stanza.extra.push(buf.toString('utf8', start, end))
      keepContinuation = field !== 'Description'
    }
  }
  let rest: Buffer | undefined
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    const buf = rest?.length ? Buffer.concat([rest, data]) : data
    let start = 0
    for (;;) {
      const end = buf.indexOf(10, start)
      if (end < 0) break
      onLine(buf, start, end)
      start = end + 1
    }
    rest = start < buf.length ? Buffer.from(buf.subarray(start)) : undefined
    if (rest && rest.length > 1 << 20)
      throw new AirgapError('E_INPUT', 'Packages index: a line is longer than 1 MiB')
  }
  if (rest?.length) onLine(rest, 0, rest.length)
  flush()
  return count
}

/** Formats a package back into a Packages stanza (no trailing blank line). */
export function formatPackageStanza(pkg: AptPackage): string {
  const lines = [`Package: ${pkg.package}`, `Version: ${pkg.version}`, `Architecture: ${pkg.architecture}`]
  if (pkg.multiArch !== 'no') lines.push(`Multi-Arch: ${pkg.multiArch}`)
  if (pkg.essential) lines.push('Essential: yes')
  if (pkg.priority) lines.push(`Priority: ${pkg.priority}`)
  if (pkg.preDepends) lines.push(`Pre-Depends: ${pkg.preDepends}`)
  if (pkg.depends) lines.push(`Depends: ${pkg.depends}`)
  if (pkg.provides) lines.push(`Provides: ${pkg.provides}`)
  if (pkg.conflicts) lines.push(`Conflicts: ${pkg.conflicts}`)
  if (pkg.breaks) lines.push(`Breaks: ${pkg.breaks}`)
  if (pkg.extra) lines.push(pkg.extra)
  lines.push(`Filename: ${pkg.filename}`, `Size: ${pkg.size}`, `SHA256: ${pkg.sha256}`)
  return lines.join('\n')
}
