import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import { RegistryError } from '../../src/serve/registry-errors.js'
import { RegistryOverlay } from '../../src/serve/registry-overlay.js'

/**
 * The registry overlay on a real folder: an index.json that cannot be read is an error (never an empty overlay that
 * the next push would write over), blobs reach the disk before they are renamed into place, and uploads are bounded
 * by a blob size and by the free space of the disk.
 */
const work = mkdtempSync(join(tmpdir(), 'astrago-overlay-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

async function refusal(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('it was not refused')
}

describe('registry overlay', () => {
  it('refuses to open when index.json exists but cannot be read, and keeps the tags it holds', async () => {
    const dir = join(work, 'unreadable')
    const overlay = await RegistryOverlay.open(dir)
    await overlay.putManifest(
      'docker.io/site/app',
      digestOf(Buffer.from('{}')),
      Buffer.from('{}'),
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 2,
      },
      ['v1'],
    )
    const index = join(dir, 'index.json')
    const saved = readFileSync(index)
    // A read error other than "missing" (root reads any file, so a folder in its place gives EISDIR).
    rmSync(index)
    mkdirSync(index)
    const error = await refusal(RegistryOverlay.open(dir))
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_ENVIRONMENT')
    expect(error.message).toContain(`Cannot read the registry overlay index ${index}`)
    rmSync(index, { recursive: true })
    writeFileSync(index, saved)
    expect((await RegistryOverlay.open(dir)).tag('docker.io/site/app', 'v1')).toBe(
      digestOf(Buffer.from('{}')),
    )
  })

  it('fsyncs a blob before renaming it into place, and its folder after', async () => {
    const overlay = await RegistryOverlay.open(join(work, 'durable'))
    await overlay.ensureRepository('docker.io/site/app')
    const bytes = Buffer.from('durable blob bytes')
    const session = await overlay.startUpload('docker.io/site/app')
    await overlay.appendUpload(session, Readable.from([bytes]), { length: bytes.length })
    const probe = await open(join(work, 'probe'), 'w')
    const prototype = Object.getPrototypeOf(probe) as {
      sync: () => Promise<void>
      datasync: () => Promise<void>
    }
    await probe.close()
    const sync = vi.spyOn(prototype, 'sync')
    const datasync = vi.spyOn(prototype, 'datasync')
    try {
      await overlay.completeUpload(session, digestOf(bytes))
      expect(sync.mock.calls.length + datasync.mock.calls.length).toBeGreaterThanOrEqual(2)
    } finally {
      sync.mockRestore()
      datasync.mockRestore()
    }
    expect(statSync((await overlay.blobFile(digestOf(bytes)))!.path).size).toBe(bytes.length)
  })

  it('refuses a blob larger than the limit (413), and rolls the chunk back', async () => {
    const overlay = await RegistryOverlay.open(join(work, 'bounded'), { maxBlobBytes: 1000 })
    const session = await overlay.startUpload('docker.io/site/app')
    const declared = await refusal(
      overlay.appendUpload(session, Readable.from([Buffer.alloc(10)]), { length: 1001 }),
    )
    expect(declared).toBeInstanceOf(RegistryError)
    expect(declared).toMatchObject({ code: 'SIZE_INVALID', status: 413 })
    // Without a declared length (chunked encoding) the bytes are counted as they come.
    const chunks = Array.from({ length: 12 }, () => Buffer.alloc(100, 1))
    const streamed = await refusal(overlay.appendUpload(session, Readable.from(chunks)))
    expect(streamed).toMatchObject({ code: 'SIZE_INVALID', status: 413 })
    expect((await overlay.getUpload(session.id))!.size).toBe(0)
    const fits = await overlay.appendUpload(session, Readable.from([Buffer.alloc(1000)]), { length: 1000 })
    expect(fits.size).toBe(1000)
  })

  it('refuses an upload that would leave less than the free-space floor (507 with an OCI error)', async () => {
    const overlay = await RegistryOverlay.open(join(work, 'full'), { minFreeBytes: 2 ** 62 })
    const session = await overlay.startUpload('docker.io/site/app')
    const error = await refusal(
      overlay.appendUpload(session, Readable.from([Buffer.alloc(10)]), { length: 10 }),
    )
    expect(error).toBeInstanceOf(RegistryError)
    expect((error as RegistryError).status).toBe(507)
    expect(JSON.parse((error as RegistryError).body()).errors[0]).toMatchObject({
      code: 'DENIED',
      message: expect.stringContaining('Not enough disk space'),
    })
    // A declared length larger than the free space is refused the same way, before any byte is written.
    const roomy = await RegistryOverlay.open(join(work, 'roomy'), { maxBlobBytes: 2 ** 60 })
    const big = await roomy.startUpload('docker.io/site/app')
    const tooBig = await refusal(
      roomy.appendUpload(big, Readable.from([Buffer.alloc(10)]), { length: 2 ** 50 }),
    )
    expect((tooBig as RegistryError).status).toBe(507)
  })
})
