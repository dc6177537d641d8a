/**
 * Buffers of one size, handed out and taken back, so the site registry's blob sender does not allocate two fresh
 * 1 MiB buffers per response. Fresh buffers of that size are memory the allocator maps and the kernel zeroes on first
 * touch, and V8 counts them as external memory, which starts garbage collections; with buffers reused, serving a blob
 * allocates nothing per response (bench/serve-vs-distribution.ts measured the difference: docs/benchmarks.md).
 *
 * At most `keep` buffers wait in the pool; more than that in use at once are allocated and dropped as before, so the
 * pool never holds more than `size × keep` bytes once the load is gone.
 */
export class BufferPool {
  private readonly free: Buffer[] = []

  constructor(
    readonly size: number,
    readonly keep: number,
  ) {}

  /** A buffer of `size` bytes with undefined contents. */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size)
  }

  /**
   * Gives a buffer back. Only a buffer nothing refers to any more may come back: no read into it and no write from
   * it still in flight.
   */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.free.length < this.keep && !this.free.includes(buffer))
      this.free.push(buffer)
  }

  /** How many buffers wait in the pool. */
  get idle(): number {
    return this.free.length
  }
}
