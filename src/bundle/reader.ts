import type { Readable } from 'node:stream'
import { AirgapError } from '../errors.js'
import { BUNDLE_JSON } from './layout.js'
import { BUNDLE_FORMAT, type BundleMetadata } from './metadata.js'
import { BLOCK, padTo512, parseHeader } from './tar.js'
import { VolumeSet } from './volumes.js'

/**
 * Reads a bundle in place: the tar headers give every member's offset (nothing is extracted or copied), and members
 * are read as byte ranges of the file or its split volumes. Member paths are only ever used as keys, never as file
 * system paths, so a hostile archive cannot write anywhere.
 */
export interface MemberLocation {
  path: string
  offset: number
  size: number
}

export class BundleReader {
  private constructor(
    readonly volumes: VolumeSet,
    readonly metadata: BundleMetadata,
    private readonly index: Map<string, MemberLocation> | undefined,
  ) {}

  /**
   * Opens a bundle. With `scan` (the default) every tar header is read to index the members; without it only
   * bundle.json is read, which is all `inspect` needs.
   */
  static async open(path: string, options: { scan?: boolean } = {}): Promise<BundleReader> {
    const volumes = await VolumeSet.openForRead(path)
    try {
      const first = await readHeaderAt(volumes, 0)
      if (!first || first.path !== BUNDLE_JSON) {
        throw new AirgapError(
          'E_INTEGRITY',
          `${path} is not an astrago-airgap bundle: its first member is not ${BUNDLE_JSON}.`,
        )
      }
      if (first.size > 256 << 20)
        throw new AirgapError('E_INTEGRITY', `${BUNDLE_JSON} in ${path} is implausibly large.`)
      const metadata = parseMetadata(await volumes.read(first.offset, first.size), path)
      const index = options.scan === false ? undefined : await scanMembers(volumes)
      return new BundleReader(volumes, metadata, index)
    } catch (error) {
      await volumes.close()
      throw error
    }
  }

  get size(): number {
    return this.volumes.size
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
    index.set(member.path, member)
    at = member.offset + member.size + padTo512(member.size)
  }
  return index
}

function parseMetadata(bytes: Buffer, path: string): BundleMetadata {
  let metadata: BundleMetadata
  try {
    metadata = JSON.parse(bytes.toString('utf8')) as BundleMetadata
  } catch (error) {
    throw new AirgapError('E_INTEGRITY', `${BUNDLE_JSON} in ${path} is not valid JSON.`, { cause: error })
  }
  if (metadata.format !== BUNDLE_FORMAT) {
    throw new AirgapError(
      'E_INPUT',
      `${path} has bundle format "${metadata.format}"; this astrago-airgap reads ${BUNDLE_FORMAT}.`,
      {
        hints: ['Use the astrago-airgap version that wrote the bundle (bundle.json names it in createdBy).'],
      },
    )
  }
  return metadata
}
