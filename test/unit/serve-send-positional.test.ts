import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { createServer, request, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BufferPool } from '../../src/serve/buffer-pool.js'
import { type PositionalRead, sendPositional } from '../../src/serve/send-positional.js'

/** The site registry's blob sender on a real node:http server over loopback, reading a real file. */
describe('sendPositional', () => {
  const CHUNK = 256 << 10
  let dir: string
  let data: Buffer
  let read: PositionalRead
  let reads = 0
  let close: () => Promise<void>

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'astrago-send-positional-'))
    data = randomBytes(48 << 20)
    writeFileSync(join(dir, 'blob'), data)
    const handle = await open(join(dir, 'blob'), 'r')
    read = async (position, length, into) => {
      reads++
      const { bytesRead } = await handle.read(into, 0, length, position)
      expect(bytesRead).toBe(length)
      return into
    }
    close = () => handle.close()
  })
  afterAll(async () => {
    await close()
    rmSync(dir, { recursive: true, force: true })
  })

  async function serve(
    send: (res: ServerResponse) => Promise<void>,
  ): Promise<{ port: number; server: Server; outcome: Promise<unknown> }> {
    let settle!: (value: unknown) => void
    const outcome = new Promise((resolve) => {
      settle = resolve
    })
    const server = createServer((_req, res) => {
      send(res).then(
        () => settle('done'),
        (error: unknown) => settle(error),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    return { port: typeof address === 'object' && address ? address.port : 0, server, outcome }
  }

  it('sends exactly the bytes asked for, across chunk boundaries', async () => {
    const start = 12_345
    const length = 3 * CHUNK + 777
    const { port, server, outcome } = await serve(async (res) => {
      res.writeHead(200, { 'Content-Length': length })
      await sendPositional(read, start, length, res, { chunkSize: CHUNK })
    })
    const body = await new Promise<Buffer>((resolve, reject) => {
      request({ port, host: '127.0.0.1' }, (res) => {
        const parts: Buffer[] = []
        res.on('data', (d: Buffer) => parts.push(d))
        res.on('end', () => resolve(Buffer.concat(parts)))
      })
        .on('error', reject)
        .end()
    })
    expect(await outcome).toBe('done')
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex')
    expect(body.length).toBe(length)
    expect(digest(body)).toBe(digest(data.subarray(start, start + length)))
    server.close()
  })

  it('reads no further than the client takes, and ends when the client hangs up', async () => {
    reads = 0
    const { port, server, outcome } = await serve(async (res) => {
      res.writeHead(200, { 'Content-Length': data.length })
      await sendPositional(read, 0, data.length, res, { chunkSize: CHUNK })
    })
    const req = request({ port, host: '127.0.0.1' }, (res) => {
      res.once('data', () => res.pause())
    })
    req.end()
    // The client takes one chunk and stops reading: the kernel's socket buffers fill, then the sender waits.
    await new Promise((r) => setTimeout(r, 1000))
    const readsWhilePaused = reads
    expect(readsWhilePaused).toBeLessThan(data.length / CHUNK / 2)
    req.destroy()
    const result = (await outcome) as { code?: string }
    expect(result.code).toBe('ERR_STREAM_PREMATURE_CLOSE')
    expect(reads).toBeLessThanOrEqual(readsWhilePaused + 1)
    server.close()
  })

  function get(port: number, path = '/'): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      request({ port, host: '127.0.0.1', path }, (res) => {
        const parts: Buffer[] = []
        res.on('data', (d: Buffer) => parts.push(d))
        res.on('end', () => resolve(Buffer.concat(parts)))
      })
        .on('error', reject)
        .end()
    })
  }

  it('sends from pooled buffers to several clients at once, each its own bytes, and gives them back', async () => {
    const pool = new BufferPool(CHUNK, 8)
    // Ranges of different lengths, one shorter than a chunk (it takes no pooled buffer).
    const ranges = new Map([
      ['/a', { start: 0, length: 5 * CHUNK + 3 }],
      ['/b', { start: 7 * CHUNK + 11, length: 9 * CHUNK }],
      ['/c', { start: 101, length: CHUNK - 5 }],
      ['/d', { start: 20 * CHUNK, length: 2 * CHUNK + 1 }],
    ])
    let sends: Promise<void>[] = []
    const server = createServer((req, res) => {
      const { start, length } = ranges.get(req.url!)!
      res.writeHead(200, { 'Content-Length': length })
      sends.push(sendPositional(read, start, length, res, { pool }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex')
    for (let round = 0; round < 2; round++) {
      const bodies = await Promise.all([...ranges.keys()].map((path) => get(port, path)))
      for (const [i, { start, length }] of [...ranges.values()].entries()) {
        expect(digest(bodies[i]!)).toBe(digest(data.subarray(start, start + length)))
      }
      await Promise.all(sends)
      sends = []
      // Three responses took two buffers each, and gave both back.
      expect(pool.idle).toBe(6)
    }
    server.close()
  })

  it('does not give back a buffer whose write the socket had not taken when the client hung up', async () => {
    const pool = new BufferPool(CHUNK, 8)
    const { port, server, outcome } = await serve(async (res) => {
      res.writeHead(200, { 'Content-Length': data.length })
      await sendPositional(read, 0, data.length, res, { pool })
    })
    const req = request({ port, host: '127.0.0.1' }, (res) => {
      res.once('data', () => res.pause())
    })
    req.end()
    await new Promise((r) => setTimeout(r, 1000))
    req.destroy()
    expect(((await outcome) as { code?: string }).code).toBe('ERR_STREAM_PREMATURE_CLOSE')
    expect(pool.idle).toBeLessThan(2)
    server.close()
  })
})
