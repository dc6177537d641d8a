import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DirectorySource, unsafeMemberPath } from '../../src/bundle/directory-source.js'
import { AirgapError } from '../../src/errors.js'

describe('bundle folder source', () => {
  const work = mkdtempSync(join(tmpdir(), 'astrago-dir-source-'))
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it('refuses unsafe member paths', () => {
    for (const bad of ['', '../x', 'a/../../x', '/etc/passwd', 'a\\b', 'a\0b', 'a//b', './a', 'a/']) {
      expect(unsafeMemberPath(bad), JSON.stringify(bad)).toBeDefined()
    }
    for (const good of [
      'bundle.json',
      'oci/blobs/sha256/ab',
      'files/bin/helm-v3.1.0-linux-amd64.tar.gz',
      'a..b',
    ]) {
      expect(unsafeMemberPath(good), good).toBeUndefined()
    }
  })

  it('lays members end to end; reads and streams span them; a file shortened later is E_INTEGRITY naming it', async () => {
    const dir = join(work, 'b')
    mkdirSync(join(dir, 'x'), { recursive: true })
    writeFileSync(join(dir, 'x', 'a'), 'AAAA')
    writeFileSync(join(dir, 'x', 'empty'), '')
    writeFileSync(join(dir, 'b'), 'BBBBBB')
    const source = await DirectorySource.open(dir, ['x/a', 'x/empty', 'gone', 'b'])
    try {
      expect(source.members.map((m) => [m.path, m.offset, m.size])).toEqual([
        ['x/a', 0, 4],
        ['x/empty', 4, 0],
        ['b', 4, 6],
      ])
      expect(source.size).toBe(10)
      expect((await source.read(2, 5)).toString()).toBe('AABBB')
      const chunks: Buffer[] = []
      for await (const c of source.createReadStream(1, 8, { chunkSize: 3 })) chunks.push(c as Buffer)
      expect(Buffer.concat(chunks).toString()).toBe('AAABBBBB')
      truncateSync(join(dir, 'b'), 2)
      const error = await source.read(4, 6).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(AirgapError)
      expect((error as AirgapError).code).toBe('E_INTEGRITY')
      expect((error as AirgapError).message).toContain('Member b ')
    } finally {
      await source.close()
    }
    await expect(DirectorySource.open(dir, ['gone'], { required: ['gone'] })).rejects.toMatchObject({
      code: 'E_INTEGRITY',
    })
  })
})
