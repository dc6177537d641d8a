import { createHash } from 'node:crypto'
import { AirgapError } from '../errors.js'
import { unifiedDiff } from './diff-text.js'
import type { BundleMetadata, LockedImage, LockedPackage, LockedPackageRepository } from './metadata.js'
import { BundleReader } from './reader.js'

/**
 * `diff A B`: what changed from bundle A to bundle B, for a release team's notes and a site's review. It reads only
 * each bundle's inventory (bundle.json) and its stage members, located through the tar headers, so it takes the same
 * time for a 50 GB bundle as for a small one, and works on split volumes and extracted folders like every reader.
 * Stage files read for the text diff are checked against their sha256 in bundle.json first.
 */
export interface DiffBundlesOptions {
  a: string
  b: string
  /** Lines of context around each change in the manifests' unified diffs (default 3). */
  context?: number
}

export interface BundleSide {
  path: string
  name: string
  version: string
  /** Bytes of the bundle file (all volumes). */
  size: number
  contentBytes: number
  blobBytes: number
  /** The fingerprint bundle.json names as its signer (not checked here: `verify --key` does that). */
  signedBy?: string
}

export interface ImageRef {
  name: string
  tag?: string
  digest: string
}

export interface Changes<Added, Changed = never> {
  added: Added[]
  removed: Added[]
  changed: Changed[]
}

export interface PackageChange {
  name: string
  architecture: string
  from: string
  to: string
}

export interface StageFileChange {
  path: string
  /** The unified diff of the two texts (empty for a file that is not text). */
  diff: string
}

export interface BundleDiff {
  a: BundleSide
  b: BundleSide
  /** True when the inventories are the same (same members with the same sha256). */
  identical: boolean
  images: Changes<ImageRef, { name: string; tag?: string; from: string; to: string }> & {
    /** A repository whose tags changed: the tags only A has and only B has (also in added/removed). */
    tagMoves: { name: string; from: string[]; to: string[] }[]
  }
  charts: Changes<{ name: string; version: string }, { name: string; from: string; to: string }>
  files: Changes<{ path: string; size: number; sha256: string }, { path: string; from: string; to: string }>
  packages: {
    repositories: Changes<{ path: string; packages: number }>
    /** Per repository present in both, package by package (name and architecture). */
    byRepository: {
      path: string
      added: { name: string; architecture: string; version: string }[]
      removed: { name: string; architecture: string; version: string }[]
      changed: PackageChange[]
    }[]
  }
  stages: {
    /** Stage names in order, in each bundle. */
    order: { a: string[]; b: string[] }
    added: string[]
    removed: string[]
    /** Stage files (member paths) added, removed or changed, the changed ones with their unified diff. */
    files: { added: string[]; removed: string[]; changed: StageFileChange[] }
  }
  installer: { a?: InstallerSide; b?: InstallerSide; changed: boolean }
  sizes: { a: number; b: number; delta: number; contentDelta: number }
}

interface InstallerSide {
  version: string
  platform: string
  size: number
  sha256: string
}

/** Stage files larger than this are compared by hash only. */
const MAX_TEXT_DIFF = 4 << 20

export async function diffBundles(options: DiffBundlesOptions): Promise<BundleDiff> {
  // Inventories are complete in delta bundles too; a delta is read alone (its size is the delta file's).
  const a = await BundleReader.open(options.a, { alone: true })
  try {
    const b = await BundleReader.open(options.b, { alone: true })
    try {
      return await compare(a, b, options)
    } finally {
      await b.close()
    }
  } finally {
    await a.close()
  }
}

async function compare(ra: BundleReader, rb: BundleReader, options: DiffBundlesOptions): Promise<BundleDiff> {
  const a = ra.metadata
  const b = rb.metadata
  const images = diffImages(a.images ?? [], b.images ?? [])
  const charts = diffKeyed(
    a.charts ?? [],
    b.charts ?? [],
    (c) => c.name,
    (c) => ({ name: c.name, version: c.version }),
    (x, y) =>
      x.version !== y.version || x.sha256 !== y.sha256
        ? {
            name: x.name,
            from: x.version === y.version ? `${x.version} (sha256:${x.sha256})` : x.version,
            to: x.version === y.version ? `${y.version} (sha256:${y.sha256})` : y.version,
          }
        : undefined,
  )
  const files = diffKeyed(
    a.files ?? [],
    b.files ?? [],
    (f) => f.path,
    (f) => ({ path: f.path, size: f.size, sha256: f.sha256 }),
    (x, y) =>
      x.sha256 !== y.sha256
        ? { path: x.path, from: `sha256:${x.sha256}`, to: `sha256:${y.sha256}` }
        : undefined,
  )
  const stages = await diffStages(ra, rb, options.context ?? 3)
  const installerOf = (m: BundleMetadata): InstallerSide | undefined =>
    m.installer
      ? {
          version: m.installer.version,
          platform: m.installer.platform,
          size: m.installer.size,
          sha256: m.installer.sha256,
        }
      : undefined
  const ia = installerOf(a)
  const ib = installerOf(b)
  const membersKey = (m: BundleMetadata) =>
    createHash('sha256')
      .update(JSON.stringify((m.members ?? []).map((x) => [x.path, x.size, x.sha256])))
      .digest('hex')
  return {
    a: side(ra),
    b: side(rb),
    identical: membersKey(a) === membersKey(b),
    images,
    charts,
    files,
    packages: diffPackages(a.packages ?? [], b.packages ?? []),
    stages,
    installer: {
      ...(ia ? { a: ia } : {}),
      ...(ib ? { b: ib } : {}),
      changed: ia?.sha256 !== ib?.sha256,
    },
    sizes: {
      a: ra.size,
      b: rb.size,
      delta: rb.size - ra.size,
      contentDelta: (b.totals?.contentBytes ?? 0) - (a.totals?.contentBytes ?? 0),
    },
  }
}

function side(reader: BundleReader): BundleSide {
  const m = reader.metadata
  return {
    path: reader.volumes.paths[0] ?? '',
    name: m.name,
    version: m.version,
    size: reader.size,
    contentBytes: m.totals?.contentBytes ?? 0,
    blobBytes: m.totals?.blobBytes ?? 0,
    ...(m.signature?.fingerprint ? { signedBy: m.signature.fingerprint } : {}),
  }
}

/** Items keyed one to one: added, removed, and `change` for those in both (undefined: unchanged). */
function diffKeyed<T, Out, Changed>(
  a: T[],
  b: T[],
  key: (item: T) => string,
  show: (item: T) => Out,
  change: (x: T, y: T) => Changed | undefined,
): Changes<Out, Changed> {
  const inA = new Map(a.map((x) => [key(x), x]))
  const inB = new Map(b.map((x) => [key(x), x]))
  const result: Changes<Out, Changed> = { added: [], removed: [], changed: [] }
  for (const [k, x] of inA) {
    const y = inB.get(k)
    if (!y) result.removed.push(show(x))
    else {
      const changed = change(x, y)
      if (changed !== undefined) result.changed.push(changed)
    }
  }
  for (const [k, y] of inB) if (!inA.has(k)) result.added.push(show(y))
  const order = (o: Out) => JSON.stringify(o)
  result.added.sort((x, y) => compareText(order(x), order(y)))
  result.removed.sort((x, y) => compareText(order(x), order(y)))
  return result
}

function diffImages(a: LockedImage[], b: LockedImage[]): BundleDiff['images'] {
  const key = (i: LockedImage) => (i.tag ? `${i.name}:${i.tag}` : `${i.name}@${i.upstreamDigest}`)
  const base = diffKeyed(
    a,
    b,
    key,
    (i): ImageRef => ({ name: i.name, ...(i.tag ? { tag: i.tag } : {}), digest: i.digest }),
    (x, y) =>
      x.digest !== y.digest
        ? { name: x.name, ...(x.tag ? { tag: x.tag } : {}), from: x.digest, to: y.digest }
        : undefined,
  )
  // Tag moves: a repository in both whose tags differ (app:1.0 in A, app:1.1 in B).
  const tagsOf = (list: LockedImage[]) => {
    const tags = new Map<string, Set<string>>()
    for (const i of list) if (i.tag) tags.set(i.name, (tags.get(i.name) ?? new Set()).add(i.tag))
    return tags
  }
  const ta = tagsOf(a)
  const tb = tagsOf(b)
  const tagMoves: BundleDiff['images']['tagMoves'] = []
  for (const [name, tags] of ta) {
    const other = tb.get(name)
    if (!other) continue
    const from = [...tags].filter((t) => !other.has(t)).sort()
    const to = [...other].filter((t) => !tags.has(t)).sort()
    if (from.length && to.length) tagMoves.push({ name, from, to })
  }
  tagMoves.sort((x, y) => compareText(x.name, y.name))
  return { ...base, tagMoves }
}

function diffPackages(a: LockedPackageRepository[], b: LockedPackageRepository[]): BundleDiff['packages'] {
  const repositories = diffKeyed<LockedPackageRepository, { path: string; packages: number }, never>(
    a,
    b,
    (r) => r.path,
    (r) => ({ path: r.path, packages: r.packages.length }),
    () => undefined,
  )
  const inB = new Map(b.map((r) => [r.path, r]))
  const byRepository: BundleDiff['packages']['byRepository'] = []
  for (const ra of a) {
    const rb = inB.get(ra.path)
    if (!rb) continue
    // A repository may carry several versions of one package: each name+architecture is compared as a version set.
    const group = (list: LockedPackage[]) => {
      const out = new Map<string, { name: string; architecture: string; versions: string[] }>()
      for (const p of list) {
        const k = `${p.name}\u0000${p.architecture}`
        const entry = out.get(k) ?? { name: p.name, architecture: p.architecture, versions: [] }
        entry.versions.push(p.version)
        out.set(k, entry)
      }
      for (const entry of out.values()) entry.versions.sort()
      return out
    }
    const ga = group(ra.packages)
    const gb = group(rb.packages)
    const entry = {
      path: ra.path,
      added: [],
      removed: [],
      changed: [],
    } as BundleDiff['packages']['byRepository'][0]
    for (const [k, x] of ga) {
      const y = gb.get(k)
      if (!y)
        entry.removed.push({ name: x.name, architecture: x.architecture, version: x.versions.join(', ') })
      else if (x.versions.join('\u0000') !== y.versions.join('\u0000'))
        entry.changed.push({
          name: x.name,
          architecture: x.architecture,
          from: x.versions.join(', '),
          to: y.versions.join(', '),
        })
    }
    for (const [k, y] of gb)
      if (!ga.has(k))
        entry.added.push({ name: y.name, architecture: y.architecture, version: y.versions.join(', ') })
    const byName = (x: { name: string; architecture: string }, y: { name: string; architecture: string }) =>
      compareText(`${x.name} ${x.architecture}`, `${y.name} ${y.architecture}`)
    entry.added.sort(byName)
    entry.removed.sort(byName)
    entry.changed.sort(byName)
    if (entry.added.length || entry.removed.length || entry.changed.length) byRepository.push(entry)
  }
  return { repositories, byRepository }
}

async function diffStages(
  ra: BundleReader,
  rb: BundleReader,
  context: number,
): Promise<BundleDiff['stages']> {
  const a = ra.metadata.stages ?? []
  const b = rb.metadata.stages ?? []
  const namesA = a.map((s) => s.name)
  const namesB = b.map((s) => s.name)
  const shaOf = (m: BundleMetadata) => new Map((m.members ?? []).map((x) => [x.path, x.sha256]))
  const shaA = shaOf(ra.metadata)
  const shaB = shaOf(rb.metadata)
  const filesA = a.flatMap((s) => s.files)
  const filesB = b.flatMap((s) => s.files)
  const setA = new Set(filesA)
  const setB = new Set(filesB)
  const changed: StageFileChange[] = []
  for (const path of filesA) {
    if (!setB.has(path) || shaA.get(path) === shaB.get(path)) continue
    const [x, y] = await Promise.all([
      readStageFile(ra, path, shaA.get(path)),
      readStageFile(rb, path, shaB.get(path)),
    ])
    changed.push({
      path,
      diff:
        x !== undefined && y !== undefined
          ? unifiedDiff(x, y, { a: `a/${path}`, b: `b/${path}` }, context)
          : '',
    })
  }
  return {
    order: { a: namesA, b: namesB },
    added: namesB.filter((n) => !namesA.includes(n)),
    removed: namesA.filter((n) => !namesB.includes(n)),
    files: {
      added: filesB.filter((p) => !setA.has(p)),
      removed: filesA.filter((p) => !setB.has(p)),
      changed,
    },
  }
}

/** A stage file's text, checked against its sha256 in the inventory; undefined when too big or not UTF-8 text. */
async function readStageFile(
  reader: BundleReader,
  path: string,
  sha256: string | undefined,
): Promise<string | undefined> {
  const location = reader.locate(path)
  // A delta leaves unchanged files to its base: compared by hash only.
  if (!location && reader.metadata.base && sha256 !== undefined) return undefined
  if (!location || sha256 === undefined)
    throw new AirgapError(
      'E_INTEGRITY',
      `${path} is a stage file in bundle.json but not a member of the bundle.`,
      {
        hints: ['The bundle is incomplete or was altered: run `astrago-airgap verify` on it.'],
        data: { member: path },
      },
    )
  if (location.size > MAX_TEXT_DIFF) return undefined
  const bytes = await reader.read(path)
  if (createHash('sha256').update(bytes).digest('hex') !== sha256)
    throw new AirgapError('E_INTEGRITY', `Member ${path} does not match its sha256.`, {
      hints: ['The bundle is damaged; copy it again from its source and run `astrago-airgap verify`.'],
      data: { member: path },
    })
  if (bytes.includes(0)) return undefined
  return bytes.toString('utf8')
}

const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
