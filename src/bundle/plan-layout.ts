import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { DEFAULT_MODE, END_OF_ARCHIVE, encodeMemberHeader, padTo512 } from './tar.js'

/**
 * The layout of a bundle file, decided before any download: every member's header and data offset. Because each size
 * and digest is known up front, downloads can write straight into their place in parallel, the disk needed is
 * known, and the same members always give the same file.
 */
export interface RemoteSource {
  /** What to name in errors: the image blob or URL. */
  describe: string
  /** Opens the content from `offset` on; `partial` false means the source ignored the offset and starts at 0. */
  open(offset: number, signal?: AbortSignal): Promise<{ body: Readable; partial: boolean }>
}

export type MemberContent = { kind: 'bytes'; bytes: Buffer } | { kind: 'remote'; source: RemoteSource }

export interface MemberInput {
  path: string
  size: number
  /** sha256 hex of the content. */
  sha256: string
  /** Permission bits of the tar header (default 0644; 0755 for the installer, so `tar -xf` gives an executable). */
  mode?: number
  content: MemberContent
}

/** A member whose bytes are at hand (bundle.json, indexes, stage files, small blobs). */
export function bytesMember(path: string, bytes: Buffer): MemberInput {
  return {
    path,
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    content: { kind: 'bytes', bytes },
  }
}

export interface PlannedMember extends MemberInput {
  header: Buffer
  headerOffset: number
  dataOffset: number
}

export interface Plan {
  members: PlannedMember[]
  /** Size of the whole tar stream, end-of-archive blocks included. */
  size: number
  /** Identifies this layout: the journal of an interrupted run is reused only for the same plan. */
  digest: string
}

export function planLayout(inputs: MemberInput[]): Plan {
  const members: PlannedMember[] = []
  const seen = new Set<string>()
  let offset = 0
  const hash = createHash('sha256')
  for (const input of inputs) {
    if (seen.has(input.path)) throw new Error(`duplicate bundle member ${input.path}`)
    seen.add(input.path)
    const mode = input.mode ?? DEFAULT_MODE
    const header = encodeMemberHeader(input.path, input.size, mode)
    members.push({ ...input, header, headerOffset: offset, dataOffset: offset + header.length })
    offset += header.length + input.size + padTo512(input.size)
    // The mode counts only where it is not the default, so the plans of bundles without executables keep their digest.
    const modeText = mode === DEFAULT_MODE ? '' : `\u0000${mode.toString(8)}`
    hash.update(`${input.path}\u0000${input.size}\u0000${input.sha256}${modeText}\n`)
  }
  return { members, size: offset + END_OF_ARCHIVE.length, digest: `sha256:${hash.digest('hex')}` }
}
