import { describe, expect, it } from 'vitest'
import { readBundleHeadFrom, readBundleHeadPrefix } from '../../src/bundle/sign-head.js'
import { encodeMemberHeader, padTo512 } from '../../src/bundle/tar.js'

const member = (path: string, data: Buffer) =>
  Buffer.concat([encodeMemberHeader(path, data.length), data, Buffer.alloc(padTo512(data.length))])

const JSON_BYTES = Buffer.from(`{"name":"demo","padding":"${'x'.repeat(1500)}"}`)
const SIGNATURE = Buffer.alloc(119, 0x88)
const REST = member('installer', Buffer.alloc(4096, 1))

/** An in-memory bundle that records the furthest byte read. */
function source(bytes: Buffer) {
  const seen = { end: 0 }
  return {
    seen,
    size: bytes.length,
    read: async (position: number, length: number) => {
      seen.end = Math.max(seen.end, position + length)
      return bytes.subarray(position, position + length)
    },
  }
}

/**
 * The head of a bundle being downloaded from its start (pull): readBundleHeadPrefix reads bundle.json and its
 * signature from the bytes already there, says "not yet" while they run past them, and never reads further.
 */
describe('readBundleHeadPrefix', () => {
  const signed = Buffer.concat([
    member('bundle.json', JSON_BYTES),
    member('bundle.json.sig', SIGNATURE),
    REST,
  ])
  const jsonEnd = 512 + JSON_BYTES.length
  const signatureEnd = 512 + JSON_BYTES.length + padTo512(JSON_BYTES.length) + 512 + SIGNATURE.length

  it('is undefined until bundle.json and its signature are both within the bytes there, and reads no further', async () => {
    for (const available of [0, 511, jsonEnd - 1, jsonEnd, signatureEnd - 1]) {
      const s = source(signed)
      expect(await readBundleHeadPrefix(s, available, 'demo.tar.partial')).toBeUndefined()
      expect(s.seen.end).toBeLessThanOrEqual(available)
    }
    const s = source(signed)
    const head = await readBundleHeadPrefix(s, signatureEnd, 'demo.tar.partial')
    expect(head?.bundleJson.equals(JSON_BYTES)).toBe(true)
    expect(head?.signature?.equals(SIGNATURE)).toBe(true)
    expect(s.seen.end).toBe(signatureEnd)
    // The whole file gives the same head as the reader of finished bundles.
    expect(await readBundleHeadFrom(source(signed), 'demo.tar')).toEqual(head)
  })

  it('an unsigned bundle: the head once the header after bundle.json is there', async () => {
    const unsigned = Buffer.concat([member('bundle.json', JSON_BYTES), REST])
    const next = 512 + JSON_BYTES.length + padTo512(JSON_BYTES.length)
    expect(await readBundleHeadPrefix(source(unsigned), next + 511, 'u.tar')).toBeUndefined()
    const head = await readBundleHeadPrefix(source(unsigned), next + 512, 'u.tar')
    expect(head?.bundleJson.equals(JSON_BYTES)).toBe(true)
    expect(head?.signature).toBeUndefined()
  })

  it('what is not a bundle is an error as soon as its first header is there', async () => {
    const other = Buffer.concat([member('README', Buffer.from('hello')), REST])
    await expect(readBundleHeadPrefix(source(other), 512, 'x.tar.partial')).rejects.toMatchObject({
      code: 'E_INTEGRITY',
    })
    // A signature member too large to be one is refused as such, not waited for.
    const huge = Buffer.concat([
      member('bundle.json', JSON_BYTES),
      member('bundle.json.sig', Buffer.alloc(70_000)),
    ])
    await expect(readBundleHeadPrefix(source(huge), signatureEnd, 'h.tar.partial')).rejects.toMatchObject({
      code: 'E_SIGNATURE_INVALID',
    })
  })

  it('a file that ends inside its head is truncated, whatever is there', async () => {
    const cut = signed.subarray(0, signatureEnd - 10)
    await expect(readBundleHeadFrom(source(cut), 'cut.tar')).rejects.toMatchObject({ code: 'E_INTEGRITY' })
    await expect(readBundleHeadPrefix(source(cut), cut.length, 'cut.tar')).rejects.toMatchObject({
      code: 'E_INTEGRITY',
    })
  })
})
