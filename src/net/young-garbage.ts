import { getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * Collects the young generation every `everyBytes` bytes received. Node reads each socket chunk into a new
 * ArrayBuffer (64 KiB on loopback), so a download at full speed makes garbage at its own rate. V8 frees those buffers
 * only when it collects the young generation, which it does once they add up to 32 MiB (twice its largest semi-space)
 * or its semi-space fills: that garbage was most of the memory `bundle` held while downloading. A young collection
 * with few survivors costs well under a millisecond, so doing one every few MiB keeps the garbage to those few MiB.
 * The buffers must be dead by then (copied, not kept): a collection promotes what is still referenced.
 */
export class YoungGarbage {
  private received = 0
  private sinceFull = 0

  /**
   * `externalLimit`: when V8's external memory (array buffers, mostly) is still above this many bytes after a young
   * collection, a full collection follows, at most once every `fullEvery` bytes. A chunk that was still held at two
   * young collections (in a body paused while the disk was slow to take a write) has been moved to the old
   * generation, where only a full collection frees it: at 10 GiB, with the page cache full, such chunks added up to
   * 18 MiB of array buffers before V8 collected them on its own.
   */
  constructor(
    private readonly everyBytes: number,
    private readonly externalLimit = Number.POSITIVE_INFINITY,
    private readonly fullEvery = 16 * everyBytes,
  ) {
    keepYoungGenerationSmall()
  }

  /** Counts `bytes` received and copied; collects when `everyBytes` have been since the last collection. */
  add(bytes: number): void {
    this.received += bytes
    this.sinceFull += bytes
    if (this.received < this.everyBytes) return
    this.received = 0
    const gc = exposedGc()
    if (this.sinceFull >= this.fullEvery && getHeapStatistics().external_memory > this.externalLimit) {
      this.sinceFull = 0
      // gc() with no options: a forced full collection. { type: 'major' } leaves such buffers in place (Node 20).
      gc?.()
    } else gc?.({ type: 'minor' })
  }
}

/**
 * Stops V8 from growing the young generation from its 1 MiB semi-spaces to 16 MiB ones (about 15 MiB more memory,
 * never given back), which it does when a burst of objects survives its collections: resolving and planning a bundle
 * is one, the start of the downloads another. With the downloads collected every few MiB the small semi-spaces are
 * enough (the same CPU in the benchmark). V8 reads the flag when it would grow them, so it holds from the call on, for
 * the rest of the process: for `bundle`, a short-lived CLI run, it is set at start (src/cli/start-settings.ts).
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
}

type Gc = (options?: { type: 'minor' | 'major' }) => void
let gc: Gc | null | undefined

/** V8's `gc`, made available to a new context by --expose-gc (null when the runtime does not allow it). */
function exposedGc(): Gc | null {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      gc = (runInNewContext('gc') as Gc | undefined) ?? null
    } catch {
      gc = null
    }
  }
  return gc
}
