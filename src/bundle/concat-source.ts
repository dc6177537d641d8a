import type { Readable } from 'node:stream'
import { type ByteSource, positionalReadStream } from './volumes.js'

/**
 * Byte sources laid end to end as one: a delta bundle followed by its base (reader.ts). Offsets past the first
 * source's size address the second, and so on; a read that crosses a boundary is served from both. Closing closes
 * every part.
 */
export class ConcatSource implements ByteSource {
  readonly paths: string[]
  readonly size: number
  private readonly starts: number[]

  constructor(readonly parts: ByteSource[]) {
    this.paths = parts.flatMap((p) => p.paths)
    this.starts = []
    let at = 0
    for (const part of parts) {
      this.starts.push(at)
      at += part.size
    }
    this.size = at
  }

  /** Where part `index` starts in the joined stream. */
  startOf(index: number): number {
    const start = this.starts[index]
    if (start === undefined) throw new RangeError(`no part ${index}`)
    return start
  }

  async read(position: number, length: number, into?: Buffer): Promise<Buffer> {
    if (position < 0 || position + length > this.size)
      throw new RangeError(`bytes ${position}..${position + length} are outside ${this.size} bytes`)
    const buffer = into ?? Buffer.alloc(length)
    let done = 0
    while (done < length) {
      const at = position + done
      let i = this.starts.length - 1
      while (this.starts[i]! > at) i--
      const part = this.parts[i]!
      const within = at - this.starts[i]!
      const n = Math.min(length - done, part.size - within)
      await part.read(within, n, buffer.subarray(done, done + n))
      done += n
    }
    return buffer
  }

  createReadStream(position: number, length: number, options: { chunkSize?: number } = {}): Readable {
    return positionalReadStream((at, size) => this.read(at, size), position, length, options.chunkSize)
  }

  async close(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.close()))
  }
}
