import { type FileHandle, open, stat } from 'node:fs/promises'
import type { ByteSource } from '../bundle/volumes.js'
import { VolumeSet } from '../bundle/volumes.js'
import { AirgapError } from '../errors.js'
import type { PositionalRead } from './send-positional.js'

/**
 * File handles of its own for each large blob the site registry sends, so that the kernel's read-ahead follows every
 * blob on its own. Linux keeps the read-ahead state per open file: with every response reading its chunks through the
 * bundle's one handle, 8 to 24 blobs read at once look to it like one file read at random places, read-ahead stays
 * small, and with cold caches serve read the bundle in many small synchronous reads (bench/serve-vs-distribution.ts;
 * distribution reads each blob from a file of its own). A response opens the volume it reads on first use and closes
 * it when it ends.
 *
 * Only a bundle file or its split volumes (a VolumeSet) are opened again; the extracted folder and a delta read
 * together with its base are read through the bundle reader's handles as before. A volume is opened again by its path
 * only while it is the same file the server started with (device and inode, recorded at start): a bundle file
 * replaced on disk while being served is not read through its new name, the bundle reader's own handles still hold
 * the file the server indexed.
 */
export class BlobReadHandles {
  private constructor(
    private readonly paths: string[],
    private readonly identities: string[],
    private readonly volumeSize: number,
  ) {}

  /** For a bundle file or its split volumes; undefined for any other source. */
  static async of(source: ByteSource): Promise<BlobReadHandles | undefined> {
    if (!(source instanceof VolumeSet)) return undefined
    const identities = await Promise.all(source.paths.map(async (p) => identity(await stat(p))))
    return new BlobReadHandles(source.paths, identities, source.volumeSize)
  }

  /**
   * A positional read through handles of its own, and the close that releases them. It falls back to `shared` (the
   * bundle reader's read) for a volume that is no longer the file the server started with.
   */
  open(shared: PositionalRead): { read: PositionalRead; close(): Promise<void> } {
    const handles = new Map<number, Promise<FileHandle | undefined>>()
    const handle = (index: number) => {
      let opened = handles.get(index)
      if (!opened) {
        opened = this.openVolume(index)
        handles.set(index, opened)
      }
      return opened
    }
    const read: PositionalRead = async (position, length, into) => {
      let done = 0
      while (done < length) {
        const at = position + done
        const index = Math.min(Math.floor(at / this.volumeSize), this.paths.length - 1)
        const offset = at - index * this.volumeSize
        const last = index === this.paths.length - 1
        const n = last ? length - done : Math.min(length - done, this.volumeSize - offset)
        const file = await handle(index)
        if (!file) {
          await shared(at, n, into.subarray(done, done + n))
          done += n
          continue
        }
        const { bytesRead } = await file.read(into, done, n, offset)
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

  /** The volume opened again, or undefined when its path no longer names the file the server started with. */
  private async openVolume(index: number): Promise<FileHandle | undefined> {
    let file: FileHandle
    try {
      file = await open(this.paths[index]!, 'r')
    } catch {
      return undefined
    }
    try {
      if (identity(await file.stat()) === this.identities[index]) return file
    } catch {}
    await file.close()
    return undefined
  }
}

function identity(info: { dev: number; ino: number }): string {
  return `${info.dev}:${info.ino}`
}
