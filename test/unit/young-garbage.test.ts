import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { YoungGarbage } from '../../src/net/young-garbage.js'

/** Array-buffer bytes above `base`, once V8's sweeper (which frees collected buffers in the background) is done. */
async function settledAbove(base: number, target: number): Promise<number> {
  let above = process.memoryUsage().arrayBuffers - base
  for (let waited = 0; above >= target && waited < 1000; waited += 10) {
    await sleep(10)
    above = process.memoryUsage().arrayBuffers - base
  }
  return above
}

describe('YoungGarbage', () => {
  it('frees dropped socket-sized buffers once the bytes it is told of reach its threshold', async () => {
    const garbage = new YoungGarbage(4 << 20)
    garbage.add(4 << 20) // a collection now, so what follows starts from a clean young generation
    await sleep(50)
    const before = process.memoryUsage().arrayBuffers
    // 2 MiB of dropped 64 KiB chunks, as a download leaves behind: under the threshold, nothing is collected yet.
    for (let i = 0; i < 32; i++) Buffer.alloc(64 << 10).fill(i)
    garbage.add(2 << 20)
    expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThanOrEqual(2 << 20)
    garbage.add(2 << 20)
    expect(await settledAbove(before, 256 << 10)).toBeLessThan(256 << 10)
  })

  it('follows with a full collection when buffers promoted to the old generation keep external memory over its limit', async () => {
    // A full collection first (limit 0, every byte), so what the other test left does not count.
    new YoungGarbage(1, 0, 0).add(1)
    await sleep(50)
    const base = process.memoryUsage().arrayBuffers
    const young = new YoungGarbage(1 << 20)
    // 8 MiB of chunks still held at four young collections: moved to the old generation, which these do not free.
    let held: Buffer[] | undefined = Array.from({ length: 128 }, (_, i) =>
      Buffer.allocUnsafe(64 << 10).fill(i),
    )
    for (let i = 0; i < 4; i++) young.add(1 << 20)
    expect(held.length).toBe(128)
    held = undefined
    young.add(1 << 20)
    expect(await settledAbove(base, 4 << 20)).toBeGreaterThanOrEqual(8 << 20)
    // Over the limit: the next step is a full collection, and the buffers go.
    new YoungGarbage(1 << 20, base + (4 << 20), 2 << 20).add(2 << 20)
    expect(await settledAbove(base, 1 << 20)).toBeLessThan(1 << 20)
  })
})
