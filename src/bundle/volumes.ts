import { existsSync } from 'node:fs'
import { type FileHandle, open, readdir, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { AirgapError } from '../errors.js'

/**
 * What a bundle reader reads from: one logical byte stream (a bundle file, its split volumes, or the members of an
 * extracted bundle folder laid end to end). Reading past the data is an E_INTEGRITY error.
 */
export interface ByteSource {
  /** Where the bundle is stored: its file, its volumes in order, or the extracted folder. */
  readonly paths: string[]
  readonly size: number
  read(position: number, length: number, into?: Buffer): Promise<Buffer>
  createReadStream(position: number, length: number, options?: { chunkSize?: number }): Readable
  close(): Promise<void>
}

/**
 * Positional I/O over a bundle stored as one file or as split volumes (name.000, name.001, …) that together are the
 * same byte stream. Writers and readers address the logical stream; this maps offsets to volumes.
 */
export class VolumeSet implements ByteSource {
  private constructor(
    readonly paths: string[],
    private readonly handles: FileHandle[],
    /** Size of every volume but possibly the last. */
    readonly volumeSize: number,
    readonly size: number,
  ) {}

  /** Creates (or reopens for resume) the volumes of a stream of `size` bytes, each at most `splitSize` bytes. */
  static async create(basePath: string, size: number, splitSize?: number): Promise<VolumeSet> {
    const volumeSize = splitSize && splitSize < size ? splitSize : Math.max(size, 1)
    const count = Math.max(1, Math.ceil(size / volumeSize))
    const paths = count === 1 && !splitSize ? [basePath] : volumePaths(basePath, count)
    const handles: FileHandle[] = []
    try {
      for (let i = 0; i < paths.length; i++) {
        const handle = await open(paths[i]!, existsSync(paths[i]!) ? 'r+' : 'w+')
        handles.push(handle)
        const want = i === count - 1 ? size - volumeSize * (count - 1) : volumeSize
        if ((await handle.stat()).size !== want) await handle.truncate(want)
      }
    } catch (error) {
      await Promise.all(handles.map((h) => h.close()))
      throw error
    }
    return new VolumeSet(paths, handles, volumeSize, size)
  }

  /** Opens a bundle for reading: the file itself, or its split volumes given the first one or the base name. */
  static async openForRead(path: string): Promise<VolumeSet> {
    const paths = await findVolumes(path)
    const handles: FileHandle[] = []
    const sizes: number[] = []
    for (const p of paths) {
      const handle = await open(p, 'r')
      handles.push(handle)
      sizes.push((await handle.stat()).size)
    }
    const volumeSize = sizes[0] ?? 0
    for (let i = 0; i < sizes.length - 1; i++) {
      if (sizes[i] !== volumeSize) {
        await Promise.all(handles.map((h) => h.close()))
        throw new AirgapError(
          'E_INTEGRITY',
          `Split volume ${paths[i]} is ${sizes[i]} bytes, but ${paths[0]} is ${volumeSize}.`,
          {
            hints: ['A volume was truncated or is from another bundle; copy the volumes again.'],
          },
        )
      }
    }
    return new VolumeSet(
      paths,
      handles,
      volumeSize,
      sizes.reduce((a, b) => a + b, 0),
    )
  }

  private locate(position: number): { index: number; offset: number } {
    const index = Math.min(Math.floor(position / this.volumeSize), this.handles.length - 1)
    return { index, offset: position - index * this.volumeSize }
  }

  async write(buffer: Buffer, position: number): Promise<void> {
    let done = 0
    while (done < buffer.length) {
      const { index, offset } = this.locate(position + done)
      const room = index === this.handles.length - 1 ? buffer.length - done : this.volumeSize - offset
      const length = Math.min(room, buffer.length - done)
      let bytesWritten: number
      try {
        ;({ bytesWritten } = await this.handles[index]!.write(buffer, done, length, offset))
      } catch (error) {
        throw this.writeError(error, index)
      }
      done += bytesWritten
    }
  }

  private writeError(error: unknown, index: number): unknown {
    const code = (error as { code?: string }).code
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new AirgapError('E_ENVIRONMENT', `The disk holding ${this.paths[index]} is full.`, {
        hints: ['Free some space and run the same command again: it continues where it stopped.'],
        cause: error,
      })
    }
    return error
  }

  /** Reads exactly `length` bytes at `position`; fewer available is an integrity error (a truncated bundle). */
  async read(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const buffer = into ?? Buffer.alloc(length)
    let done = 0
    while (done < length) {
      const { index, offset } = this.locate(position + done)
      const room = index === this.handles.length - 1 ? length - done : this.volumeSize - offset
      const { bytesRead } = await this.handles[index]!.read(
        buffer,
        done,
        Math.min(room, length - done),
        offset,
      )
      if (bytesRead === 0) {
        throw new AirgapError(
          'E_INTEGRITY',
          `The bundle ends at byte ${position + done}, before the data it lists.`,
          {
            hints: ['The bundle file is truncated: copy it again, then run `astrago-airgap verify`.'],
          },
        )
      }
      done += bytesRead
    }
    return buffer
  }

  /** A stream of `length` bytes at `position`: see positionalReadStream. */
  createReadStream(position: number, length: number, options: { chunkSize?: number } = {}): Readable {
    return positionalReadStream((at, size) => this.read(at, size), position, length, options.chunkSize)
  }

  async sync(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.datasync()))
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.close()))
  }
}

/**
 * A stream of `length` bytes at `position` of a byte source, read positionally in chunks of at most `chunkSize`
 * (256 KiB by default). The next chunk is read only when the consumer asks for more, so a slow client never makes the
 * reader buffer a blob; a failed read (a truncated bundle) fails the stream with the read's error.
 */
export function positionalReadStream(
  read: (position: number, length: number) => Promise<Buffer>,
  position: number,
  length: number,
  chunkSize = 256 << 10,
): Readable {
  const end = position + length
  let at = position
  const stream: Readable = new Readable({
    highWaterMark: chunkSize,
    read: () => {
      if (at >= end) {
        stream.push(null)
        return
      }
      const size = Math.min(chunkSize, end - at)
      const from = at
      at += size
      read(from, size).then(
        (chunk) => {
          stream.push(chunk)
          if (at >= end) stream.push(null)
        },
        (error: unknown) => stream.destroy(error as Error),
      )
    },
  })
  return stream
}

export function volumePaths(basePath: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${basePath}.${String(i).padStart(3, '0')}`)
}

/** The volumes of a bundle: `x.tar` itself, or `x.tar.000`, `x.tar.001`, … given either `x.tar` or `x.tar.000`. */
export async function findVolumes(path: string): Promise<string[]> {
  const base = /\.\d{3}$/.test(path) ? path.slice(0, -4) : path
  if (base === path && existsSync(path) && (await stat(path)).isFile()) return [path]
  const dir = dirname(base)
  const prefix = `${basename(base)}.`
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    names = []
  }
  const volumes = names
    .filter((n) => n.startsWith(prefix) && /^\d{3}$/.test(n.slice(prefix.length)))
    .sort()
    .map((n) => join(dir, n))
  if (volumes.length === 0) {
    throw new AirgapError(
      'E_INPUT',
      `No bundle at ${path}: neither the file nor split volumes ${base}.000… exist.`,
      {
        hints: ['Give the path of the bundle .tar file, or of its first volume (.000).'],
      },
    )
  }
  volumes.forEach((v, i) => {
    if (!v.endsWith(`.${String(i).padStart(3, '0')}`)) {
      throw new AirgapError('E_INTEGRITY', `Split volume ${base}.${String(i).padStart(3, '0')} is missing.`, {
        hints: ['Copy every volume of the bundle into the same folder.'],
      })
    }
  })
  return volumes
}
