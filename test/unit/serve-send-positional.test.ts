import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { createServer, request, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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
      await sendPositional(read, start, length, res, CHUNK)
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
      await sendPositional(read, 0, data.length, res, CHUNK)
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
})
