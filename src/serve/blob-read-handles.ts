import { type FileHandle, open, stat } from 'node:fs/promises'
import { ConcatSource } from '../bundle/concat-source.js'
import type { ByteSource } from '../bundle/volumes.js'
import { VolumeSet } from '../bundle/volumes.js'
import { AirgapError } from '../errors.js'
import type { PositionalRead } from './send-positional.js'

/**
 * File handles of its own for each large blob the site registry sends, so that the kernel's read-ahead follows every
 * blob on its own. Linux keeps the read-ahead state per open file: with every response reading its chunks through the
 * bundle's one handle, 8 to 24 blobs read at once look to it like one file read at random places, read-ahead stays
 * small, and with cold caches serve read the bundle in many small synchronous reads (bench/serve-vs-distribution.ts;
 * distribution reads each blob from a file of its own). A response opens the file it reads on first use and closes
 * it when it ends.
 *
 * The files opened again are a bundle file or its split volumes, also where they are laid end to end as a delta read
 * with its base. An extracted folder's part is read through the bundle reader, whose DirectorySource already reads
 * each member through a handle of its own. A file is opened again by its path only while it is the same file the
 * server started with (device and inode, recorded at start): a bundle file replaced on disk while being served is not
 * read through its new name, the bundle reader's own handles still hold the file the server indexed.
 */
export class BlobReadHandles {
  private constructor(private readonly files: StoredFile[]) {}

  /** For a source made of bundle files or volumes (alone or with others); undefined when it has none. */
  static async of(source: ByteSource): Promise<BlobReadHandles | undefined> {
    const files = await storedFiles(source, 0)
    return files.length ? new BlobReadHandles(files) : undefined
  }

  /**
   * A positional read through handles of its own, and the close that releases them. It falls back to `shared` (the
   * bundle reader's read) for bytes in no file of its own, and in a file that is no longer the one the server
   * started with.
   */
  open(shared: PositionalRead): { read: PositionalRead; close(): Promise<void> } {
    const handles = new Map<number, Promise<FileHandle | undefined>>()
    const handle = (index: number) => {
      let opened = handles.get(index)
      if (!opened) {
        opened = this.openFile(index)
        handles.set(index, opened)
      }
      return opened
    }
    const read: PositionalRead = async (position, length, into) => {
      let done = 0
      while (done < length) {
        const at = position + done
        const index = this.fileAt(at)
        const stored = this.files[index]
        const inside = stored !== undefined && at < stored.start + stored.size
        // Up to the end of this file, or (outside every file) up to the start of the next one.
        const end = inside
          ? stored.start + stored.size
          : (this.files[index + 1]?.start ?? Number.POSITIVE_INFINITY)
        const n = Math.min(length - done, end - at)
        const file = inside ? await handle(index) : undefined
        if (!file) {
          await shared(at, n, into.subarray(done, done + n))
          done += n
          continue
        }
        const { bytesRead } = await file.read(into, done, n, at - stored!.start)
        if (bytesRead === 0) {
          throw new AirgapError('E_INTEGRITY', `The bundle ends at byte ${at}, before the data it lists.`, {
            hints: ['The bundle file is truncated: copy it again, then run `astrago-airgap verify`.'],
          })
        }
        done += bytesRead
      }
      return into
    }
    const close = async () => {
      const opened = await Promise.allSettled(handles.values())
      await Promise.all(opened.map((o) => (o.status === 'fulfilled' ? o.value?.close() : undefined)))
    }
    return { read, close }
  }

  /** The last file starting at or before `position` (-1 when none does). */
  private fileAt(position: number): number {
    let lo = -1
    let hi = this.files.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.files[mid]!.start <= position) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  /** The file opened again, or undefined when its path no longer names the file the server started with. */
  private async openFile(index: number): Promise<FileHandle | undefined> {
    const stored = this.files[index]!
    let file: FileHandle
    try {
      file = await open(stored.path, 'r')
    } catch {
      return undefined
    }
    try {
      if (identity(await file.stat()) === stored.identity) return file
    } catch {}
    await file.close()
    return undefined
  }
}

/** A file holding bytes [start, start + size) of the source, from its own first byte. */
interface StoredFile {
  path: string
  start: number
  size: number
  identity: string
}

async function storedFiles(source: ByteSource, at: number): Promise<StoredFile[]> {
  if (source instanceof VolumeSet) {
    return await Promise.all(
      source.paths.map(async (path, i) => ({
        path,
        start: at + i * source.volumeSize,
        size: i === source.paths.length - 1 ? source.size - i * source.volumeSize : source.volumeSize,
        identity: identity(await stat(path)),
      })),
    )
  }
  if (source instanceof ConcatSource) {
    const files: StoredFile[] = []
    for (const [i, part] of source.parts.entries())
      files.push(...(await storedFiles(part, at + source.startOf(i))))
    return files
  }
  return []
}

function identity(info: { dev: number; ino: number }): string {
  return `${info.dev}:${info.ino}`
}
