// The record of where install pushed the bundle (site state folder), read by the site server's node setup.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parsePushTarget } from '../../src/push/target.js'
import {
  PULL_REGISTRY_FILE,
  pullRegistryOf,
  readPullRegistry,
  writePullRegistry,
} from '../../src/serve/pull-registry.js'

describe('the pull registry record', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pull-registry-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('is the push target as typed: scheme, host and project', () => {
    const plain = parsePushTarget('http://10.0.0.11:30002', 'library')
    expect(pullRegistryOf(plain.target, plain.plainHttp)).toEqual({
      url: 'http://10.0.0.11:30002',
      prefix: 'library',
    })
    const tls = parsePushTarget('harbor.site:443')
    expect(pullRegistryOf(tls.target, tls.plainHttp)).toEqual({ url: 'https://harbor.site:443' })
  })

  it('is absent until written, then read back; a damaged one is an E_INPUT error naming the file', async () => {
    const state = join(dir, 'state')
    expect(await readPullRegistry(state)).toBeUndefined()
    const file = await writePullRegistry(
      state,
      { url: 'http://h:30002', prefix: 'library' },
      { name: 'a', version: '1' },
    )
    expect(file).toBe(join(state, PULL_REGISTRY_FILE))
    expect(await readPullRegistry(state)).toEqual({ url: 'http://h:30002', prefix: 'library' })
    for (const bad of ['{', '{"url":"ftp://h"}', '{"url":"http://h/x"}', '{"url":"http://h","prefix":3}']) {
      writeFileSync(file, bad)
      await expect(readPullRegistry(state), bad).rejects.toMatchObject({
        code: 'E_INPUT',
        message: expect.stringContaining(file),
      })
    }
  })
})
