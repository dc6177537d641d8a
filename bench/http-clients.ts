/**
 * HTTP clients for registry blob downloads, compared on the same blobs from the same local registry.
 *
 *   node --import tsx bench/http-clients.ts
 *
 * Seeds a distribution v3 registry (test/support) with BENCH_HTTP_BLOBS uncompressed layers totalling BENCH_HTTP_MB
 * MiB (default 16 × 32 MiB), then downloads every blob with each client, sequentially and 8 at a time, streaming the
 * body through sha256 and discarding it (the bytes go nowhere: /dev/null), and checks every digest. One warm-up
 * round, then BENCH_ROUNDS measured rounds (default 5) with the clients interleaved; prints the median MiB/s and the
 * CPU time this process spent per GiB (user + system, hashing included, which is the same for every client).
 *
 * Clients: undici.request (what src/net/http.ts uses), astrago's HttpClient (undici.request plus retries and
 * redirects), undici.fetch (the undici package), Node's global fetch (the undici bundled in Node), node-fetch (if
 * installed; v2 is present as a dependency of @kubernetes/client-node), plain node:http as a baseline, and a GET
 * written by hand on a net.Socket reading into one reused buffer (what the HTTP layer costs above the bytes).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent as HttpAgent, get as httpGet } from 'node:http'
import { createRequire } from 'node:module'
import { connect } from 'node:net'
import type { Readable } from 'node:stream'
import { Agent, request, fetch as undiciFetch } from 'undici'
import { HttpClient } from '../src/net/http.js'
import { pushImage } from '../test/support/images.js'
import { startRegistry, type TestRegistry } from '../test/support/registry.js'
import { describeMachine, fixed, GiB, load, log, MiB, median, mibPerSecond, table } from './support.js'

interface Blob {
  url: string
  digest: string
  size: number
}

interface Client {
  name: string
  /** Downloads one blob; returns its sha256 (sha256:hex) and length. */
  get(url: string): Promise<{ digest: string; bytes: number }>
  close(): Promise<void>
}

const BLOB_COUNT = Number(process.env.BENCH_HTTP_BLOBS ?? 16)
const TOTAL_MIB = Number(process.env.BENCH_HTTP_MB ?? 512)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const PARALLEL = 8

async function hashNodeStream(body: AsyncIterable<unknown>): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of body) {
    hash.update(chunk as Buffer)
    bytes += (chunk as Buffer).length
  }
  return { digest: `sha256:${hash.digest('hex')}`, bytes }
}

async function hashWebStream(
  body: ReadableStream<Uint8Array> | null,
): Promise<{ digest: string; bytes: number }> {
  if (!body) throw new Error('no body')
  const hash = createHash('sha256')
  let bytes = 0
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    hash.update(value)
    bytes += value.length
  }
  return { digest: `sha256:${hash.digest('hex')}`, bytes }
}

function check(status: number, url: string): void {
  if (status !== 200) throw new Error(`GET ${url}: HTTP ${status}`)
}

async function makeClients(): Promise<{ clients: Client[]; missing: string[] }> {
  const clients: Client[] = []
  const missing: string[] = []
  const poolOptions = { connections: 16, keepAliveTimeout: 30_000 }

  const requestAgent = new Agent(poolOptions)
  clients.push({
    name: 'undici.request',
    get: async (url) => {
      const res = await request(url, { dispatcher: requestAgent })
      check(res.statusCode, url)
      return await hashNodeStream(res.body)
    },
    close: () => requestAgent.close(),
  })

  const astrago = new HttpClient({ connections: 16 })
  clients.push({
    name: 'astrago HttpClient',
    get: async (url) => {
      const res = await astrago.fetch(url)
      check(res.status, url)
      return await hashNodeStream(res.body as Readable)
    },
    close: () => astrago.close(),
  })

  const fetchAgent = new Agent(poolOptions)
  clients.push({
    name: 'undici.fetch',
    get: async (url) => {
      const res = await undiciFetch(url, { dispatcher: fetchAgent })
      check(res.status, url)
      return await hashWebStream(res.body as ReadableStream<Uint8Array>)
    },
    close: () => fetchAgent.close(),
  })

  clients.push({
    name: `global fetch (node ${process.versions.node}, undici ${process.versions.undici})`,
    get: async (url) => {
      const res = await globalThis.fetch(url)
      check(res.status, url)
      return await hashWebStream(res.body)
    },
    close: async () => undefined,
  })

  try {
    const require = createRequire(import.meta.url)
    const pkgPath = require.resolve('node-fetch/package.json')
    const version = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version
    const mod = (await import('node-fetch')) as unknown as {
      default: (url: string, init: { agent: HttpAgent }) => Promise<{ status: number; body: Readable }>
    }
    const nodeFetch = mod.default
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 16 })
    clients.push({
      name: `node-fetch ${version}`,
      get: async (url) => {
        const res = await nodeFetch(url, { agent })
        check(res.status, url)
        return await hashNodeStream(res.body)
      },
      close: async () => agent.destroy(),
    })
  } catch {
    missing.push('node-fetch (not installed: npm install -D node-fetch@3 to include it)')
  }

  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 16 })
  clients.push({
    name: 'node:http (baseline)',
    get: (url) =>
      new Promise((resolve, reject) => {
        httpGet(url, { agent: httpAgent }, (res) => {
          try {
            check(res.statusCode ?? 0, url)
          } catch (error) {
            res.resume()
            reject(error)
            return
          }
          hashNodeStream(res).then(resolve, reject)
        }).on('error', reject)
      }),
    close: async () => httpAgent.destroy(),
  })
  clients.push({
    name: 'net.Socket onread (HTTP/1.1 by hand, 1 MiB reads)',
    get: (url) => onreadGet(url),
    close: async () => undefined,
  })
  return { clients, missing }
}

/**
 * A GET written by hand on a net.Socket whose reads land in one reused 1 MiB buffer (the socket's `onread` option):
 * no buffer per socket read, no HTTP parser over the body, which is hashed where it lands. Plain HTTP, a new
 * connection per blob, a Content-Length body only: a measure of what the HTTP layer costs, not a client to use.
 */
function onreadGet(url: string): Promise<{ digest: string; bytes: number }> {
  const target = new URL(url)
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    let head: Buffer | undefined = Buffer.alloc(0)
    let remaining = -1
    let bytes = 0
    const body = (chunk: Buffer) => {
      hash.update(chunk)
      bytes += chunk.length
      remaining -= chunk.length
      if (remaining === 0) {
        socket.destroy()
        resolve({ digest: `sha256:${hash.digest('hex')}`, bytes })
      }
    }
    const socket = connect({
      host: target.hostname,
      port: Number(target.port),
      onread: {
        buffer: Buffer.allocUnsafe(1 << 20),
        callback: (length: number, buffer: Uint8Array) => {
          const chunk = Buffer.from(buffer.buffer, buffer.byteOffset, length)
          if (!head) {
            body(chunk)
            return true
          }
          head = Buffer.concat([head, chunk])
          const end = head.indexOf('\r\n\r\n')
          if (end < 0) return true
          const lines = head.subarray(0, end).toString('latin1').split('\r\n')
          const status = Number(lines[0]!.split(' ')[1])
          const lengthLine = lines.find((l) => /^content-length:/i.test(l))
          if (status !== 200 || !lengthLine) {
            socket.destroy()
            reject(new Error(`GET ${url}: HTTP ${status}${lengthLine ? '' : ', no Content-Length'}`))
            return false
          }
          remaining = Number(lengthLine.split(':')[1])
          const rest = head.subarray(end + 4)
          head = undefined
          if (rest.length) body(rest)
          return true
        },
      },
    })
    socket.on('connect', () =>
      socket.write(
        `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`,
      ),
    )
    socket.on('error', reject)
  })
}

async function downloadAll(client: Client, blobs: Blob[], parallel: number): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < blobs.length) {
      const blob = blobs[next++]!
      const got = await client.get(blob.url)
      if (got.digest !== blob.digest || got.bytes !== blob.size)
        throw new Error(`${client.name}: ${blob.url} gave ${got.digest} (${got.bytes} bytes)`)
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
}

async function measure(client: Client, blobs: Blob[], parallel: number) {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await downloadAll(client, blobs, parallel)
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const bytes = blobs.reduce((a, b) => a + b.size, 0)
  return { ms, mibps: mibPerSecond(bytes, ms), cpuSecPerGiB: (cpu.user + cpu.system) / 1e6 / (bytes / GiB) }
}

async function main(): Promise<void> {
  let registry: TestRegistry | undefined
  const made = await makeClients()
  try {
    registry = await startRegistry({ flavor: 'distribution-v3' })
    const layerSize = Math.floor((TOTAL_MIB * MiB) / BLOB_COUNT)
    log(`seeding ${BLOB_COUNT} blobs of ${fixed(layerSize / MiB)} MiB into ${registry.url}`)
    const pushed = await pushImage(registry, {
      repository: 'bench/http-clients',
      tag: '1',
      gzip: false,
      layers: Array.from({ length: BLOB_COUNT }, (_, i) => ({ seed: `http-bench-${i}`, size: layerSize })),
    })
    const blobs: Blob[] = pushed.manifests[0]!.layers.map((l) => ({
      ...l,
      url: `${registry!.url}/v2/bench/http-clients/blobs/${l.digest}`,
    }))
    const totalBytes = blobs.reduce((a, b) => a + b.size, 0)

    const results = new Map<string, { mibps: number[]; cpu: number[] }>()
    const modes = [
      { name: 'sequential', parallel: 1 },
      { name: `${PARALLEL} parallel`, parallel: PARALLEL },
    ]
    for (let round = 0; round <= ROUNDS; round++) {
      log(`${round === 0 ? 'warm-up round' : `round ${round}/${ROUNDS}`} (load ${load()})`)
      // Rotate the order each round so no client always runs first (or right after the slowest).
      const order = made.clients.map((_, i) => made.clients[(i + round) % made.clients.length]!)
      for (const mode of modes) {
        for (const client of order) {
          const r = await measure(client, blobs, mode.parallel)
          if (round === 0) continue
          const key = `${client.name}\u0000${mode.name}`
          const entry = results.get(key) ?? { mibps: [], cpu: [] }
          entry.mibps.push(r.mibps)
          entry.cpu.push(r.cpuSecPerGiB)
          results.set(key, entry)
        }
      }
    }

    // What hashing alone costs (the same for every client), to separate it from each client's own overhead.
    const hashCpu: number[] = []
    const block = Buffer.alloc(64 << 10, 7)
    for (let round = 0; round < ROUNDS; round++) {
      const cpu0 = process.cpuUsage()
      const hash = createHash('sha256')
      for (let done = 0; done < totalBytes; done += block.length) hash.update(block)
      hash.digest()
      const cpu = process.cpuUsage(cpu0)
      hashCpu.push((cpu.user + cpu.system) / 1e6 / (totalBytes / GiB))
    }

    const out: string[] = []
    out.push(
      `HTTP clients: ${blobs.length} blobs, ${fixed(totalBytes / MiB, 0)} MiB per pass, median of ${ROUNDS} rounds`,
    )
    out.push(...describeMachine(registry.workDir).map((l) => `  ${l}`))
    for (const mode of modes) {
      const rows = made.clients.map((client) => {
        const r = results.get(`${client.name}\u0000${mode.name}`)!
        return [
          client.name,
          fixed(median(r.mibps), 0),
          fixed(median(r.cpu), 2),
          r.mibps.map((v) => fixed(v, 0)).join(' '),
        ]
      })
      out.push('', `${mode.name}:`, table(['client', 'MiB/s', 'CPU s/GiB', 'MiB/s each round'], rows))
    }
    out.push('', `sha256 alone (64 KiB chunks in memory): ${fixed(median(hashCpu), 2)} CPU s/GiB`)
    if (made.missing.length) out.push('', ...made.missing.map((m) => `not measured: ${m}`))
    console.log(out.join('\n'))
  } finally {
    await Promise.all(made.clients.map((c) => c.close().catch(() => undefined)))
    await registry?.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
