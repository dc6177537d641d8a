import { describe, expect, it } from 'vitest'
import { YoungGarbage } from '../../src/net/young-garbage.js'

describe('YoungGarbage', () => {
  it('frees dropped socket-sized buffers once the bytes it is told of reach its threshold', () => {
    const garbage = new YoungGarbage(4 << 20)
    garbage.add(4 << 20) // a collection now, so what follows starts from a clean young generation
    const before = process.memoryUsage().arrayBuffers
    // 2 MiB of dropped 64 KiB chunks, as a download leaves behind: under the threshold, nothing is collected yet.
    for (let i = 0; i < 32; i++) Buffer.alloc(64 << 10).fill(i)
    garbage.add(2 << 20)
    const kept = process.memoryUsage().arrayBuffers - before
    expect(kept).toBeGreaterThanOrEqual(2 << 20)
    garbage.add(2 << 20)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(256 << 10)
  })
})
