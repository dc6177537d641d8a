import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import type { Readable, Writable } from 'node:stream'

/**
 * A fault-injection HTTP forwarder for the tests: listens on loopback in front of a real upstream (a test registry, a
 * file server) and, per request, at a given rate, either resets the connection before any header, answers 429 or 503
 * (sometimes with Retry-After), cuts the body at a random byte (headers sent, part of the body, then the socket is
 * destroyed; for an upload, the request body is cut instead), or trickles the body (or the upload) in small, delayed
 * pieces; every other request passes through untouched. Choices come from a PRNG seeded by (seed, method, URL, how
 * many times that request was seen), so a seed gives the same faults whatever order concurrent requests arrive in. It counts what it did, so a test can assert the faults happened,
 * and it closes itself after `lifetimeMs`.
 */
export type FaultKind = 'reset' | 'status429' | 'status503' | 'cut' | 'trickle'

export const FAULT_KINDS: readonly FaultKind[] = ['reset', 'status429', 'status503', 'cut', 'trickle']

export interface FaultSettings {
  seed: number | string
  /** Share of requests that get a fault, 0..1. */
  rate: number
  kinds?: readonly FaultKind[]
  /**
   * Failing faults in a row for the same request (method + URL) before one is let through: a client's retry budget is
   * finite, and these tests are about what the client does with a fault, not about exhausting it (default 2).
   */
  maxInARow?: number
}

export interface FaultEvent {
  method: string
  path: string
  kind: FaultKind
  /** For a cut: the byte it was cut at and the body length. */
  detail?: string
}

export interface FaultProxy {
  /** http://127.0.0.1:<port> */
  url: string
  /** 127.0.0.1:<port> */
  host: string
  counts: Record<FaultKind | 'pass', number>
  /** The faults injected since the last `configure` (the first 10,000). */
  events: FaultEvent[]
  /** New seed, rate or kinds; counts and history start over. */
  configure(settings: FaultSettings): void
  stop(): Promise<void>
}

const MAX_EVENTS = 10_000
/** Extra time a trickled body may take at most. */
const TRICKLE_BUDGET_MS = 300

/** A deterministic stream of numbers in [0, 1) for one key: sha256 of the key and a counter, 32 bits at a time. */
function prng(key: string): () => number {
  let counter = 0
  return () => createHash('sha256').update(`${key}#${counter++}`).digest().readUInt32LE(0) / 4294967296
}

export async function startFaultProxy(
  upstream: string,
  settings: FaultSettings,
  options: { lifetimeMs?: number } = {},
): Promise<FaultProxy> {
  const target = new URL(upstream)
  if (target.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname))
    throw new Error(`fault proxy: only http:// upstreams on loopback (${upstream})`)
  let current = settings
  const seen = new Map<string, number>()
  const inARow = new Map<string, number>()
  const emptyCounts = () => ({ reset: 0, status429: 0, status503: 0, cut: 0, trickle: 0, pass: 0 })
  const proxy: FaultProxy = {
    url: '',
    host: '',
    counts: emptyCounts(),
    events: [],
    configure(next) {
      current = next
      seen.clear()
      inARow.clear()
      proxy.counts = emptyCounts()
      proxy.events = []
    },
    stop: async () => {},
  }

  const recorded = new WeakSet<IncomingMessage>()
  const record = (req: IncomingMessage, kind: FaultKind | 'pass', detail?: string) => {
    if (recorded.has(req)) return
    recorded.add(req)
    proxy.counts[kind] += 1
    if (kind !== 'pass' && proxy.events.length < MAX_EVENTS)
      proxy.events.push({
        method: req.method ?? '',
        path: req.url ?? '',
        kind,
        ...(detail ? { detail } : {}),
      })
  }

  const choose = (req: IncomingMessage): { kind: FaultKind | 'pass'; random: () => number } => {
    const key = `${req.method} ${req.url}`
    const n = seen.get(key) ?? 0
    seen.set(key, n + 1)
    const random = prng(`${current.seed}|${key}|${n}`)
    const kinds = current.kinds ?? FAULT_KINDS
    const row = inARow.get(key) ?? 0
    let kind: FaultKind | 'pass' = 'pass'
    if (random() < current.rate && kinds.length) kind = kinds[Math.floor(random() * kinds.length)]!
    if (kind !== 'pass' && kind !== 'trickle' && row >= (current.maxInARow ?? 2)) kind = 'pass'
    inARow.set(key, kind === 'pass' || kind === 'trickle' ? 0 : row + 1)
    return { kind, random }
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const { kind, random } = choose(req)
    if (kind === 'reset') {
      record(req, kind)
      req.socket.resetAndDestroy()
      return
    }
    if (kind === 'status429' || kind === 'status503') {
      record(req, kind)
      req.resume()
      const headers: Record<string, string> = { 'content-type': 'text/plain', connection: 'close' }
      const wait = random()
      if (wait < 0.5) headers['retry-after'] = wait < 0.1 ? '1' : '0'
      res.writeHead(kind === 'status429' ? 429 : 503, headers).end(`injected ${kind}\n`)
      return
    }
    const sending = Number(
      req.headers['content-length'] ?? (req.headers['transfer-encoding'] ? Number.NaN : 0),
    )
    /** Cuts and trickles go to the request body when there is one (an upload), else to the response body. */
    const noUpload = !(Number.isNaN(sending) || sending >= 2)
    const forward = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        const length = Number(up.headers['content-length'])
        const hasBody = req.method !== 'HEAD' && up.statusCode !== 204 && up.statusCode !== 304
        if (kind === 'cut' && noUpload && hasBody && (Number.isNaN(length) || length >= 2)) {
          // A random byte of the body: anywhere from the first to the last, never a convenient boundary.
          const cutAt = Number.isNaN(length)
            ? 1 + Math.floor(random() * 65_536)
            : 1 + Math.floor(random() * (length - 1))
          res.writeHead(up.statusCode ?? 502, up.headers)
          let sent = 0
          let cut = false
          up.on('data', (chunk: Buffer) => {
            if (cut) return
            if (sent + chunk.length < cutAt) {
              sent += chunk.length
              if (!res.write(chunk)) {
                up.pause()
                res.once('drain', () => up.resume())
              }
              return
            }
            cut = true
            record(req, 'cut', `at ${cutAt} of ${Number.isNaN(length) ? 'chunked' : length}`)
            res.write(chunk.subarray(0, cutAt - sent), () => res.socket?.destroy())
            up.destroy()
          })
          up.on('end', () => {
            if (cut) return
            record(req, 'pass')
            res.end()
          })
          up.on('error', () => res.socket?.destroy())
          return
        }
        if (kind === 'trickle' && noUpload && hasBody) {
          record(req, 'trickle')
          res.writeHead(up.statusCode ?? 502, up.headers)
          void trickle(up, res, random).catch(() => res.socket?.destroy())
          return
        }
        record(req, 'pass')
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
        up.on('error', () => res.socket?.destroy())
      },
    )
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('upstream failed\n')
      else res.socket?.destroy()
    })
    if (kind === 'cut' && !noUpload) {
      // An upload: the request body is cut at a random byte instead (part of it reaches the upstream, then both
      // connections close), as when the link drops mid-upload.
      const cutAt = Number.isNaN(sending)
        ? 1 + Math.floor(random() * 65_536)
        : 1 + Math.floor(random() * (sending - 1))
      let received = 0
      let cut = false
      req.on('data', (chunk: Buffer) => {
        if (cut) return
        if (received + chunk.length < cutAt) {
          received += chunk.length
          if (!forward.write(chunk)) {
            req.pause()
            forward.once('drain', () => req.resume())
          }
          return
        }
        cut = true
        record(req, 'cut', `upload at ${cutAt} of ${Number.isNaN(sending) ? 'chunked' : sending}`)
        forward.write(chunk.subarray(0, cutAt - received), () => {
          forward.destroy()
          req.socket.destroy()
        })
      })
      req.on('end', () => {
        if (!cut) forward.end()
      })
      return
    }
    if (kind === 'trickle' && !noUpload) {
      record(req, 'trickle')
      void trickle(req, forward, random).catch(() => req.socket.destroy())
      return
    }
    req.pipe(forward)
  }

  const server: Server = createServer(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  proxy.url = `http://127.0.0.1:${port}`
  proxy.host = `127.0.0.1:${port}`
  let stopped: Promise<void> | undefined
  proxy.stop = () => {
    stopped ??= new Promise<void>((resolve) => {
      clearTimeout(timer)
      server.closeAllConnections()
      server.close(() => resolve())
    })
    return stopped
  }
  const timer = setTimeout(() => void proxy.stop(), options.lifetimeMs ?? 10 * 60_000)
  timer.unref()
  return proxy
}

/** Sends a body (a response, or an upload) in small pieces with short pauses (within TRICKLE_BUDGET_MS), then the rest at full speed. */
async function trickle(from: Readable, to: Writable, random: () => number): Promise<void> {
  let budget = TRICKLE_BUDGET_MS
  for await (const data of from) {
    let chunk = data as Buffer
    while (chunk.length && budget > 0) {
      const size = 1 + Math.floor(random() * 16_384)
      const delay = 1 + Math.floor(random() * 20)
      budget -= delay
      await new Promise((r) => setTimeout(r, delay))
      if (!to.write(chunk.subarray(0, size))) await new Promise((r) => to.once('drain', r))
      chunk = chunk.subarray(size)
    }
    if (chunk.length && !to.write(chunk)) await new Promise((r) => to.once('drain', r))
  }
  to.end()
}
