import { constants } from 'node:fs'
import { type FileHandle, lstat, open, realpath } from 'node:fs/promises'
import { join, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { AirgapError } from '../errors.js'
import { type ByteSource, positionalReadStream } from './volumes.js'

/**
 * A bundle extracted with `tar -xf` into a folder: every member is the file at its member path inside that folder.
 * The members are laid end to end in one virtual byte stream (in the order given), so a member location's offset and
 * size work exactly as they do for a bundle file and callers cannot tell the two apart.
 *
 * Member paths come from bundle.json, which is input: a path with `..`, `.` or empty segments, a leading `/`, a `\`
 * or a NUL is refused, and so is a file that is not a regular file once symbolic links are resolved, or whose real
 * path leaves the folder. Files are opened by their checked real path with O_NOFOLLOW.
 */
export interface DirectoryMember {
  path: string
  /** Offset in the virtual stream. */
  offset: number
  size: number
  /** The checked real path of the file. */
  file: string
}

const MAX_OPEN_FILES = 32

export class DirectorySource implements ByteSource {
  private readonly starts: number[]
  private readonly handles = new Map<string, { handle: Promise<FileHandle>; users: number; used: number }>()
  private clock = 0

  private constructor(
    readonly root: string,
    readonly members: DirectoryMember[],
    readonly size: number,
  ) {
    this.starts = members.map((m) => m.offset)
    this.paths = [root]
  }

  readonly paths: string[]

  /**
   * Indexes `paths` inside the folder `root`. A listed file that does not exist is left out (the caller reports it as
   * missing); `required` paths must exist.
   */
  static async open(
    root: string,
    paths: string[],
    options: { required?: string[] } = {},
  ): Promise<DirectorySource> {
    const realRoot = await realpath(root)
    const members: DirectoryMember[] = []
    let offset = 0
    for (const path of paths) {
      const file = await resolveMemberFile(realRoot, root, path, options.required?.includes(path) ?? false)
      if (!file) continue
      members.push({ path, offset, size: file.size, file: file.real })
      offset += file.size
    }
    return new DirectorySource(root, members, offset)
  }

  /** Reads exactly `length` bytes at `position`; a file shorter than it was when indexed is an integrity error. */
  async read(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const buffer = into ?? Buffer.alloc(length)
    let done = 0
    while (done < length) {
      const member = this.memberAt(position + done)
      const within = position + done - member.offset
      const n = Math.min(length - done, member.size - within)
      await this.withHandle(member, async (handle) => {
        let got = 0
        while (got < n) {
          const { bytesRead } = await handle.read(buffer, done + got, n - got, within + got)
          if (bytesRead === 0) throw shortFile(member, within + got)
          got += bytesRead
        }
      })
      done += n
    }
    return buffer
  }

  /** A stream of `length` bytes at `position`, read in chunks as the consumer asks (as VolumeSet does). */
  createReadStream(position: number, length: number, options: { chunkSize?: number } = {}): Readable {
    return positionalReadStream((at, size) => this.read(at, size), position, length, options.chunkSize)
  }

  async close(): Promise<void> {
    const open = [...this.handles.values()]
    this.handles.clear()
    await Promise.all(open.map(async (h) => (await h.handle.catch(() => undefined))?.close()))
  }

  private memberAt(position: number): DirectoryMember {
    // The last member starting at or before `position` that is not empty (binary search over the starts).
    let lo = 0
    let hi = this.starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.starts[mid]! <= position) lo = mid
      else hi = mid - 1
    }
    while (lo < this.members.length && this.members[lo]!.offset + this.members[lo]!.size <= position) lo++
    const member = this.members[lo]
    if (!member || position < member.offset) {
      throw new AirgapError('E_INTEGRITY', `Byte ${position} is outside the bundle folder ${this.root}.`)
    }
    return member
  }

  /** Runs `fn` with an open handle on the member's file; a few handles stay open for the next reads. */
  private async withHandle<T>(member: DirectoryMember, fn: (handle: FileHandle) => Promise<T>): Promise<T> {
    let entry = this.handles.get(member.file)
    if (!entry) {
      const handle = open(member.file, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: unknown) => {
        this.handles.delete(member.file)
        throw memberError(member.path, error)
      })
      entry = { handle, users: 0, used: 0 }
      this.handles.set(member.file, entry)
      this.evict()
    }
    entry.users++
    entry.used = ++this.clock
    try {
      return await fn(await entry.handle)
    } finally {
      entry.users--
      this.evict()
    }
  }

  private evict(): void {
    if (this.handles.size <= MAX_OPEN_FILES) return
    const idle = [...this.handles.entries()]
      .filter(([, e]) => e.users === 0)
      .sort((a, b) => a[1].used - b[1].used)
    for (const [file, entry] of idle) {
      if (this.handles.size <= MAX_OPEN_FILES) break
      this.handles.delete(file)
      void entry.handle.then((h) => h.close()).catch(() => undefined)
    }
  }
}

/** Why a member path may not be used as a path inside the folder, or undefined when it is safe. */
export function unsafeMemberPath(path: string): string | undefined {
  if (typeof path !== 'string' || path === '') return 'it is empty'
  if (path.includes('\0')) return 'it contains a NUL byte'
  if (path.includes('\\')) return 'it contains a backslash'
  if (path.startsWith('/')) return 'it is absolute'
  for (const segment of path.split('/')) {
    if (segment === '..') return 'it climbs out with ..'
    if (segment === '' || segment === '.') return 'it has an empty or . segment'
  }
  return undefined
}

async function resolveMemberFile(
  realRoot: string,
  root: string,
  path: string,
  required: boolean,
): Promise<{ real: string; size: number } | undefined> {
  const unsafe = unsafeMemberPath(path)
  if (unsafe) {
    throw new AirgapError(
      'E_INTEGRITY',
      `The bundle lists member ${JSON.stringify(path)}, which is unsafe: ${unsafe}.`,
      {
        hints: ['The bundle was altered or is not an astrago-airgap bundle; do not use it.'],
        data: { member: path },
      },
    )
  }
  const file = join(realRoot, ...path.split('/'))
  try {
    await lstat(file)
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT' && !required) return undefined
    throw memberError(path, error, root)
  }
  let real: string
  try {
    real = await realpath(file)
  } catch (error) {
    // A dangling symbolic link.
    throw memberError(path, error, root)
  }
  if (!real.startsWith(realRoot + sep)) {
    throw new AirgapError(
      'E_INTEGRITY',
      `Member ${path} in ${root} is a symbolic link (or under one) that leads out of the bundle folder, to ${real}.`,
      {
        hints: ['Extract the bundle again with `tar -xf` into an empty folder.'],
        data: { member: path },
      },
    )
  }
  const info = await lstat(real)
  if (!info.isFile()) {
    throw new AirgapError('E_INTEGRITY', `Member ${path} in ${root} is not a regular file.`, {
      hints: ['Extract the bundle again with `tar -xf` into an empty folder.'],
      data: { member: path },
    })
  }
  return { real, size: info.size }
}

function memberError(path: string, error: unknown, root?: string): AirgapError {
  const code = (error as { code?: string }).code
  if (code === 'ELOOP') {
    return new AirgapError(
      'E_INTEGRITY',
      `Member ${path} became a symbolic link after the bundle folder was opened.`,
      {
        data: { member: path },
        cause: error,
      },
    )
  }
  return new AirgapError(
    'E_INTEGRITY',
    `Member ${path} of the bundle folder${root ? ` ${root}` : ''} cannot be read (${code ?? String(error)}).`,
    {
      hints: ['Extract the bundle again with `tar -xf`, then run `astrago-airgap verify`.'],
      data: { member: path },
      cause: error,
    },
  )
}

function shortFile(member: DirectoryMember, at: number): AirgapError {
  return new AirgapError(
    'E_INTEGRITY',
    `Member ${member.path} ends at byte ${at}, before the ${member.size} bytes it had when the bundle folder was opened.`,
    {
      hints: [
        'The file changed or was truncated: extract the bundle again, then run `astrago-airgap verify`.',
      ],
      data: { member: member.path },
    },
  )
}
