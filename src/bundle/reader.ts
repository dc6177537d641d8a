import { stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { AirgapError } from '../errors.js'
import { sha256Digest } from '../oci/digest.js'
import { ConcatSource } from './concat-source.js'
import { DirectorySource } from './directory-source.js'
import { BUNDLE_JSON } from './layout.js'
import { BUNDLE_FORMAT, type BundleMetadata } from './metadata.js'
import { BLOCK, padTo512, parseHeader } from './tar.js'
import { checkMemberPath, validateBundleNames } from './validate-names.js'
import { type ByteSource, VolumeSet } from './volumes.js'

/**
 * Reads a bundle in place: the tar headers give every member's offset (nothing is extracted or copied), and members
 * are read as byte ranges of the file or its split volumes. Member paths are only ever used as keys, never as file
 * system paths, so a hostile archive cannot write anywhere.
 *
 * A folder holding bundle.json (a bundle extracted with `tar -xf`) is read the same way: its members are the files
 * at the member paths bundle.json lists, laid end to end as one virtual stream (see DirectorySource, which refuses
 * unsafe paths and symbolic links leading out of the folder). Callers see the same locations, reads and streams.
 *
 * A delta bundle (bundle.json names a `base`) is opened with its base: the base must be the very bundle whose
 * bundle.json digest the delta records. The two are read as one byte stream (the delta, then the base), and every
 * member the delta's inventory lists but its tar lacks is located in the base, provided the base's own inventory lists
 * it with the same size and sha256. Callers see one bundle, as if it were the full one.
 */
export interface MemberLocation {
  path: string
  offset: number
  size: number
}

export class BundleReader {
  private constructor(
    /** The bytes of the bundle: its file or volumes, or the members of an extracted folder end to end. */
    readonly volumes: ByteSource,
    readonly metadata: BundleMetadata,
    private readonly index: Map<string, MemberLocation> | undefined,
    /** Bytes of the bundle (all volumes; for a folder, the bytes of its members). */
    readonly size: number,
    /** `file` for a bundle file or its split volumes, `directory` for an extracted bundle folder. */
    readonly kind: 'file' | 'directory' = 'file',
    /** For a delta opened with its base: the base and how many members were found in it. */
    readonly base?: { path: string; metadata: BundleMetadata; members: number },
  ) {}

  /**
   * Opens a bundle. Every tar header of a bundle file is read to index (and check) the members, 512 bytes each, never
   * their data: a damaged or crafted member list is refused whatever command opens the bundle. For an extracted
   * folder, `scan: false` (what `inspect` asks for) reads bundle.json alone, without opening the member files.
   */
  static async open(path: string, options: OpenOptions = {}): Promise<BundleReader> {
    const reader = await BundleReader.openOne(path, options.scan !== false)
    if (options.base === undefined && (!reader.metadata.base || options.scan === false || options.alone))
      return reader
    try {
      return await withBase(reader, path, options.base)
    } catch (error) {
      await reader.close()
      throw error
    }
  }

  /** @internal One bundle file or folder, never with a base. */
  static async openOne(path: string, scan: boolean): Promise<BundleReader> {
    if (await isDirectory(path)) return await openDirectory(path, scan)
    const volumes = await VolumeSet.openForRead(path)
    try {
      const first = await readHeaderAt(volumes, 0)
      if (!first || first.path !== BUNDLE_JSON) {
        throw new AirgapError(
          'E_INTEGRITY',
          `${path} is not an astrago-airgap bundle: its first member is not ${BUNDLE_JSON}.`,
        )
      }
      if (first.size > MAX_BUNDLE_JSON) throw bundleJsonTooLarge(path, first.size)
      const metadata = parseMetadata(await volumes.read(first.offset, first.size), path)
      const index = await scanMembers(volumes)
      return new BundleReader(volumes, metadata, index, volumes.size)
    } catch (error) {
      await volumes.close()
      throw error
    }
  }

  /** Every member found in the tar, in order (requires a scan). */
  members(): MemberLocation[] {
    if (!this.index) throw new Error('bundle opened without a scan')
    return [...this.index.values()]
  }

  locate(path: string): MemberLocation | undefined {
    if (!this.index) throw new Error('bundle opened without a scan')
    return this.index.get(path)
  }

  async read(path: string): Promise<Buffer> {
    const location = this.locate(path)
    if (!location) throw new AirgapError('E_INTEGRITY', `The bundle has no member ${path}.`)
    return await this.volumes.read(location.offset, location.size)
  }

  /**
   * Streams a member, or the bytes `start`..`end` (inclusive, as in an HTTP Range) of it, straight out of the bundle
   * file with backpressure: never more than one chunk in memory per stream.
   */
  openStream(location: MemberLocation, start = 0, end = location.size - 1): Readable {
    if (start < 0 || end >= location.size || (end < start && !(start === 0 && location.size === 0))) {
      throw new RangeError(`bytes ${start}-${end} are outside ${location.path} (${location.size} bytes)`)
    }
    return this.volumes.createReadStream(location.offset + start, Math.max(0, end - start + 1))
  }

  async close(): Promise<void> {
    await this.volumes.close()
  }

  /** @internal */
  static fromDirectory(
    source: DirectorySource,
    metadata: BundleMetadata,
    index: Map<string, MemberLocation> | undefined,
    size: number,
  ): BundleReader {
    return new BundleReader(source, metadata, index, size, 'directory')
  }

  /** @internal The delta `delta` read together with `base` (see withBase). */
  static layered(delta: BundleReader, base: BundleReader, basePath: string): BundleReader {
    const source = new ConcatSource([delta.volumes, base.volumes])
    const shift = source.startOf(1)
    const index = new Map(delta.index)
    const inBase = new Map(base.metadata.members.map((m) => [m.path, m]))
    let fromBase = 0
    for (const member of delta.metadata.members) {
      if (index.has(member.path)) continue
      const listed = inBase.get(member.path)
      const location = base.locate(member.path)
      if (!listed || !location || listed.sha256 !== member.sha256 || listed.size !== member.size) continue
      index.set(member.path, { ...location, offset: location.offset + shift })
      fromBase += 1
    }
    return new BundleReader(source, delta.metadata, index, delta.size + base.size, delta.kind, {
      path: basePath,
      metadata: base.metadata,
      members: fromBase,
    })
  }
}

export interface OpenOptions {
  /** Index the members (default true); false reads bundle.json alone, for `inspect`. */
  scan?: boolean
  /** The base bundle a delta bundle was made on; required to read a delta's members, refused for a full bundle. */
  base?: string
  /** Open a delta bundle without its base: only its own members can be read (what `publish` and `diff` need). */
  alone?: boolean
}

/** A delta and its base as one bundle; every way the base can be wrong is an E_INPUT error saying which. */
async function withBase(
  delta: BundleReader,
  path: string,
  basePath: string | undefined,
): Promise<BundleReader> {
  const wanted = delta.metadata.base
  if (!wanted) {
    throw new AirgapError(
      'E_INPUT',
      `${path} is a full bundle (${delta.metadata.name} ${delta.metadata.version}), not a delta: it takes no --base.`,
      { hints: ['Leave out --base.'] },
    )
  }
  if (basePath === undefined) {
    throw new AirgapError(
      'E_INPUT',
      `${path} is a delta bundle: it holds only what ${wanted.name} ${wanted.version} lacks, and is read together with that bundle.`,
      { hints: [`Give the ${wanted.name} ${wanted.version} bundle it was made on with --base.`] },
    )
  }
  const base = await BundleReader.openOne(basePath, true)
  try {
    const json = await base.read(BUNDLE_JSON)
    const digest = sha256Digest(json)
    if (digest !== wanted.bundleJson) {
      const { name, version } = base.metadata
      throw new AirgapError(
        'E_INPUT',
        `${basePath} is not the base of ${path}: the delta was made on ${wanted.name} ${wanted.version} (bundle.json ${wanted.bundleJson}), and ${basePath} is ${name} ${version} (bundle.json ${digest}).`,
        {
          hints: [
            `Give the very ${wanted.name} ${wanted.version} bundle the delta was made on (\`inspect\` shows a bundle's name and version); a rebuilt one differs if anything upstream changed.`,
          ],
          data: { base: basePath, expected: wanted.bundleJson, found: digest },
        },
      )
    }
    if (base.metadata.base) {
      throw new AirgapError(
        'E_INPUT',
        `${basePath} is itself a delta bundle; a delta's base is a full bundle.`,
      )
    }
    return BundleReader.layered(delta, base, basePath)
  } catch (error) {
    await base.close()
    throw error
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}

/** bundle.json is read whole into memory: no real bundle comes near this (docs/bundle-format.md). */
export const MAX_BUNDLE_JSON = 64 << 20

function bundleJsonTooLarge(path: string, size: number): AirgapError {
  return new AirgapError(
    'E_INTEGRITY',
    `${BUNDLE_JSON} in ${path} is ${size} bytes, larger than the 64 MiB a bundle.json may be.`,
    { hints: ['The bundle is corrupt or was crafted; get it again from its source.'] },
  )
}

async function openDirectory(path: string, scan: boolean): Promise<BundleReader> {
  let head: DirectorySource
  try {
    head = await DirectorySource.open(path, [BUNDLE_JSON], { required: [BUNDLE_JSON] })
  } catch (error) {
    if (error instanceof AirgapError && (error.cause as { code?: string } | undefined)?.code === 'ENOENT') {
      throw new AirgapError(
        'E_INPUT',
        `${path} is a folder without ${BUNDLE_JSON}: not an extracted bundle.`,
        {
          hints: [
            'Give the bundle .tar file, its first volume (.000), or the folder it was extracted into with tar -xf.',
          ],
        },
      )
    }
    throw error
  }
  let metadata: BundleMetadata
  let jsonSize: number
  try {
    jsonSize = head.size
    if (jsonSize > MAX_BUNDLE_JSON) throw bundleJsonTooLarge(path, jsonSize)
    metadata = parseMetadata(await head.read(0, jsonSize), path)
  } finally {
    await head.close()
  }
  if (!Array.isArray(metadata.members) || metadata.members.some((m) => typeof m?.path !== 'string')) {
    throw new AirgapError('E_INTEGRITY', `${BUNDLE_JSON} in ${path} has no valid member list.`)
  }
  const listed = metadata.members.map((m) => m.path)
  const source = await DirectorySource.open(path, scan ? [BUNDLE_JSON, ...listed] : [BUNDLE_JSON], {
    required: [BUNDLE_JSON],
  })
  const index = scan
    ? new Map(source.members.map((m) => [m.path, { path: m.path, offset: m.offset, size: m.size }]))
    : undefined
  const size = scan ? source.size : jsonSize + metadata.members.reduce((a, m) => a + (Number(m.size) || 0), 0)
  return BundleReader.fromDirectory(source, metadata, index, size)
}

async function readHeaderAt(volumes: VolumeSet, at: number): Promise<MemberLocation | undefined> {
  if (at + BLOCK > volumes.size) {
    throw new AirgapError(
      'E_INTEGRITY',
      `The bundle ends at byte ${volumes.size}, in the middle of its member list.`,
      {
        hints: ['The bundle file is truncated: copy it again.'],
      },
    )
  }
  const block = await volumes.read(at, BLOCK)
  const header = await parseHeader(block, (offset, length) => volumes.read(offset, length), at)
  if (!header) return undefined
  if (header.type !== '0' && header.type !== '\u0000') {
    throw new AirgapError(
      'E_INTEGRITY',
      `The tar member at offset ${at} (${JSON.stringify(header.path)}) is of type ${JSON.stringify(header.type)}, not a regular file.`,
      { hints: ['Bundles hold regular files only; this one is corrupt or was crafted.'] },
    )
  }
  return { path: header.path, offset: at + header.headerSize, size: header.size }
}

async function scanMembers(volumes: VolumeSet): Promise<Map<string, MemberLocation>> {
  const index = new Map<string, MemberLocation>()
  let at = 0
  for (;;) {
    const member = await readHeaderAt(volumes, at)
    if (!member) break
    if (member.offset + member.size > volumes.size) {
      throw new AirgapError(
        'E_INTEGRITY',
        `The bundle is truncated: member ${member.path} runs past the end of the file.`,
        {
          hints: ['Copy the bundle again (all volumes), then run `astrago-airgap verify`.'],
          data: { member: member.path },
        },
      )
    }
    const unsafe = member.path === BUNDLE_JSON && at === 0 ? undefined : checkMemberPath(member.path)
    if (unsafe || index.has(member.path)) {
      throw new AirgapError(
        'E_INTEGRITY',
        `The tar member at offset ${at} is not safe to use: ${unsafe ?? `${JSON.stringify(member.path)} is in the bundle twice`}.`,
        {
          hints: ['The bundle is corrupt or was crafted; get it again from its source.'],
          data: { member: member.path },
        },
      )
    }
    index.set(member.path, member)
    at = member.offset + member.size + padTo512(member.size)
  }
  return index
}

export function parseMetadata(bytes: Buffer, path: string): BundleMetadata {
  let metadata: BundleMetadata
  try {
    metadata = JSON.parse(bytes.toString('utf8')) as BundleMetadata
  } catch (error) {
    throw new AirgapError('E_INTEGRITY', `${BUNDLE_JSON} in ${path} is not valid JSON.`, { cause: error })
  }
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))
    throw new AirgapError('E_INTEGRITY', `${BUNDLE_JSON} in ${path} is not a JSON object.`)
  if (metadata.format !== BUNDLE_FORMAT) {
    throw new AirgapError(
      'E_INPUT',
      `${path} has bundle format "${metadata.format}"; this astrago-airgap reads ${BUNDLE_FORMAT}.`,
      {
        hints: ['Use the astrago-airgap version that wrote the bundle (bundle.json names it in createdBy).'],
      },
    )
  }
  validateBundleNames(metadata, path)
  return metadata
}
