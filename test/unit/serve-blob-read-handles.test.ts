import { randomBytes } from 'node:crypto'
import { mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConcatSource } from '../../src/bundle/concat-source.js'
import { DirectorySource } from '../../src/bundle/directory-source.js'
import { VolumeSet } from '../../src/bundle/volumes.js'
import { BlobReadHandles } from '../../src/serve/blob-read-handles.js'
import type { PositionalRead } from '../../src/serve/send-positional.js'

/** Reads of the site registry's large blobs through file handles of their own, on real files. */
describe('BlobReadHandles', () => {
  const VOLUME = 1 << 20
  let dir: string
  let data: Buffer
  let volumes: VolumeSet
  let sharedReads: number
  let shared: PositionalRead

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'astrago-blob-handles-'))
    data = randomBytes(3 * VOLUME + 4321)
    const written = await VolumeSet.create(join(dir, 'b.tar'), data.length, VOLUME)
    await written.write(data, 0)
    await written.close()
    volumes = await VolumeSet.openForRead(join(dir, 'b.tar.000'))
    sharedReads = 0
    shared = (position, length, into) => {
      sharedReads++
      return volumes.read(position, length, into)
    }
  })
  afterEach(async () => {
    await volumes.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('reads the same bytes as the bundle reader, across volume boundaries, without its handles', async () => {
    const handles = (await BlobReadHandles.of(volumes))!
    const own = handles.open(shared)
    for (const [start, length] of [
      [0, 10],
      [VOLUME - 7, 100],
      [VOLUME / 2, 2 * VOLUME + 5],
      [3 * VOLUME, 4321],
    ] as const) {
      const into = Buffer.alloc(length)
      await own.read(start, length, into)
      expect(into.equals(data.subarray(start, start + length))).toBe(true)
    }
    await own.close()
    expect(sharedReads).toBe(0)
  })

  it('reads through the bundle reader once a volume is no longer the file the server started with', async () => {
    const handles = (await BlobReadHandles.of(volumes))!
    // The second volume is replaced on disk by another file of the same size.
    writeFileSync(join(dir, 'other'), Buffer.alloc(VOLUME, 7))
    renameSync(join(dir, 'other'), join(dir, 'b.tar.001'))
    const own = handles.open(shared)
    const into = Buffer.alloc(2 * VOLUME)
    await own.read(VOLUME / 2, 2 * VOLUME, into)
    expect(into.equals(data.subarray(VOLUME / 2, VOLUME / 2 + 2 * VOLUME))).toBe(true)
    expect(sharedReads).toBe(1)
    await own.close()
  })

  it('reports a truncated bundle as an integrity error', async () => {
    const handles = (await BlobReadHandles.of(volumes))!
    truncateSync(join(dir, 'b.tar.003'), 100)
    const own = handles.open(shared)
    await expect(own.read(3 * VOLUME, 4321, Buffer.alloc(4321))).rejects.toMatchObject({
      code: 'E_INTEGRITY',
    })
    await own.close()
  })

  it('reads a delta with its base (files laid end to end) through handles of their own, a folder part as before', async () => {
    // The delta: one file; its base: the split volumes above. Then a delta whose base is an extracted folder.
    const deltaBytes = randomBytes(VOLUME + 99)
    writeFileSync(join(dir, 'delta.tar'), deltaBytes)
    const delta = await VolumeSet.openForRead(join(dir, 'delta.tar'))
    const joined = new ConcatSource([delta, volumes])
    const all = Buffer.concat([deltaBytes, data])
    const readJoined: PositionalRead = (position, length, into) => {
      sharedReads++
      return joined.read(position, length, into)
    }
    const own = (await BlobReadHandles.of(joined))!.open(readJoined)
    for (const [start, length] of [
      [0, 10],
      [VOLUME + 50, 100],
      [VOLUME + 99 + VOLUME - 3, 2 * VOLUME],
      [all.length - 4321, 4321],
    ] as const) {
      const into = Buffer.alloc(length)
      await own.read(start, length, into)
      expect(into.equals(all.subarray(start, start + length))).toBe(true)
    }
    await own.close()
    expect(sharedReads).toBe(0)

    writeFileSync(join(dir, 'member.bin'), data.subarray(0, 5000))
    const folder = await DirectorySource.open(dir, ['member.bin'])
    const withFolder = new ConcatSource([delta, folder])
    const readWithFolder: PositionalRead = (position, length, into) => {
      sharedReads++
      return withFolder.read(position, length, into)
    }
    const mixed = (await BlobReadHandles.of(withFolder))!.open(readWithFolder)
    const into = Buffer.alloc(1000)
    await mixed.read(VOLUME + 99 - 500, 1000, into)
    expect(into.equals(Buffer.concat([deltaBytes.subarray(-500), data.subarray(0, 500)]))).toBe(true)
    expect(sharedReads).toBe(1) // the folder's part only: DirectorySource reads each member through its own handle
    await mixed.close()
    await withFolder.close()
  })

  it('opens nothing for a source other than a bundle file or its volumes', async () => {
    const other = { paths: [], size: 0, read: volumes.read.bind(volumes) } as never
    expect(await BlobReadHandles.of(other)).toBeUndefined()
  })
})
