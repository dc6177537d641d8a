import { createReadStream, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join, normalize } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/**
 * A static HTTP server on loopback for the tests: stands in for a chart repository or a download site. It honours
 * Range requests (so resumable downloads can be tested), can throttle a file, and counts requests per path.
 */
export interface FileServer {
  url: string
  requests: Map<string, number>
  stop(): Promise<void>
}

export async function startFileServer(
  root: string,
  options: { throttle?: { path: string; bytesPerSecond: number }; ranges?: boolean } = {},
): Promise<FileServer> {
  const requests = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    requests.set(path, (requests.get(path) ?? 0) + 1)
    const file = join(root, normalize(path).replace(/^(\.\.[/\\])+/, ''))
    let size: number
    try {
      const info = statSync(file)
      if (!info.isFile()) throw new Error('not a file')
      size = info.size
    } catch {
      res.writeHead(404).end('not found')
      return
    }
    let start = 0
    let end = size - 1
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    if (range && options.ranges !== false) {
      start = Number(range[1])
      end = range[2] ? Number(range[2]) : size - 1
      res.writeHead(206, {
        'content-length': end - start + 1,
        'content-range': `bytes ${start}-${end}/${size}`,
        'accept-ranges': 'bytes',
      })
    } else {
      res.writeHead(200, { 'content-length': size, 'accept-ranges': 'bytes' })
    }
    if (req.method === 'HEAD' || size === 0) {
      res.end()
      return
    }
    const stream = createReadStream(file, { start, end })
    const throttle = options.throttle?.path === path ? throttled(options.throttle.bytesPerSecond) : undefined
    const done = throttle ? pipeline(stream, throttle, res) : pipeline(stream, res)
    done.catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function throttled(bytesPerSecond: number): Transform {
  const started = Date.now()
  let sent = 0
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length
      const due = started + (sent / bytesPerSecond) * 1000
      setTimeout(() => callback(null, chunk), Math.max(0, due - Date.now()))
    },
  })
}
