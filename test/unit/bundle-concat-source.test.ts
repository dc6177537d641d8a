import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { text } from 'node:stream/consumers'
import { afterAll, describe, expect, it } from 'vitest'
import { ConcatSource } from '../../src/bundle/concat-source.js'
import { VolumeSet } from '../../src/bundle/volumes.js'

const work = mkdtempSync(join(tmpdir(), 'astrago-concat-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

async function parts(...contents: string[]): Promise<ConcatSource> {
  const sources = []
  for (const [i, content] of contents.entries()) {
    const file = join(work, `part-${i}-${Math.random().toString(36).slice(2)}`)
    writeFileSync(file, content)
    sources.push(await VolumeSet.openForRead(file))
  }
  return new ConcatSource(sources)
}

describe('ConcatSource: a delta and its base read as one byte stream', () => {
  it('addresses every part at its start, and serves reads and streams across the boundaries', async () => {
    const source = await parts('delta-bytes|', '', 'base-bytes')
    try {
      expect(source.size).toBe(22)
      expect(source.startOf(0)).toBe(0)
      expect(source.startOf(2)).toBe(12)
      expect(source.paths).toHaveLength(3)
      expect((await source.read(0, 5)).toString()).toBe('delta')
      expect((await source.read(12, 4)).toString()).toBe('base')
      expect((await source.read(6, 12)).toString()).toBe('bytes|base-b')
      const into = Buffer.alloc(8, '.')
      await source.read(10, 4, into.subarray(2, 6))
      expect(into.toString()).toBe('..s|ba..')
      expect(await text(source.createReadStream(8, 10, { chunkSize: 3 }))).toBe('tes|base-b')
    } finally {
      await source.close()
    }
  })

  it('refuses a read outside the joined bytes', async () => {
    const source = await parts('abc', 'def')
    try {
      await expect(source.read(4, 3)).rejects.toThrow(RangeError)
      await expect(source.read(-1, 1)).rejects.toThrow(RangeError)
      expect(() => source.startOf(2)).toThrow(RangeError)
    } finally {
      await source.close()
    }
  })
})
