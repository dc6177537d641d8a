import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFromDefinition } from '../../../src/bundle/bundle-from-definition.js'
import { BundleReader } from '../../../src/bundle/reader.js'
import { type ProgressEvent, silentSink } from '../../../src/events/types.js'
import { createHtpasswdEntry } from '../../../src/serve/htpasswd.js'
import { createRegistryHandler } from '../../../src/serve/registry-handler.js'
import { serveBundle } from '../../../src/serve/serve-bundle.js'
import { issueServerCertificate, loadOrCreateSiteCa } from '../../../src/serve/site-ca.js'
import { type SiteServer, startSiteServer } from '../../../src/serve/site-server.js'
import { pushImage } from '../../support/images.js'
import { startRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

/**
 * The site server under abuse, on real sockets: a client guessing passwords is slowed to 429 with Retry-After (per
 * address: 127.0.0.2 is not slowed by 127.0.0.1), request headers that never finish and bodies that stall are cut,
 * uploads that would fill the disk are refused with 507, and `serve --insecure` with users warns that passwords cross
 * the network in cleartext. The bundle is a real one made from a real distribution registry.
 */
interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

function call(
  url: string,
  options: { method?: string; headers?: Record<string, string>; localAddress?: string; body?: Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers, localAddress: options.localAddress },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
})

/** Resolves with how long the server took to close a socket that sent `sent` and then nothing. */
function closedAfter(port: number, sent: string, giveUpMs: number): Promise<number | 'open'> {
  return new Promise((resolve) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1', () => socket.write(sent))
    const timer = setTimeout(() => {
      socket.destroy()
      resolve('open')
    }, giveUpMs)
    socket.on('data', () => undefined)
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Date.now() - started)
    })
  })
}

describe('site server under abuse', () => {
  const USER = 'pusher'
  const PASSWORD = 'push-Secret-42'
  let work: string
  let bundlePath: string
  let reader: BundleReader
  const servers: SiteServer[] = []

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-serve-hardening-'))
    const upstream = await startRegistry()
    try {
      await pushImage(upstream, {
        repository: 'docker.io/library/tiny',
        tag: '1',
        layers: [{ seed: 'tiny', size: 20_000 }],
      })
      const definition = join(work, 'tiny.json')
      writeFileSync(
        definition,
        JSON.stringify({
          apiVersion: 'airgap.astrago.io/v1alpha1',
          kind: 'Bundle',
          metadata: { name: 'hardening', version: '1.0.0' },
          images: ['docker.io/library/tiny:1'],
        }),
      )
      const bundle = await bundleFromDefinition({
        definition,
        outputDir: join(work, 'out'),
        mirrors: { 'docker.io': `${upstream.url}/docker.io` },
        helm: findTool('helm'),
        toolVersion: 'test',
        sink: silentSink,
      })
      bundlePath = bundle.path
    } finally {
      await upstream.stop()
    }
    reader = await BundleReader.open(bundlePath)
  })

  afterAll(async () => {
    for (const server of servers) await server.close()
    await reader?.close()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  const startRegistryServer = async (
    name: string,
    options: Parameters<typeof createRegistryHandler>[0]['limits'] = {},
  ) => {
    const htpasswd = join(work, `${name}.htpasswd`)
    writeFileSync(htpasswd, `${createHtpasswdEntry(USER, PASSWORD, 6)}\n`)
    const events: ProgressEvent[] = []
    const sink = { emit: (e: ProgressEvent) => events.push(e) }
    const registry = createRegistryHandler({
      reader,
      overlayDir: join(work, `${name}-overlay`),
      auth: { htpasswdFile: htpasswd, failedAuthLimit: { failures: 3, windowMs: 3000 } },
      limits: options,
      sink,
    })
    await registry.ready()
    const server = await startSiteServer({ host: '127.0.0.1', port: 0, handlers: [registry], sink })
    servers.push(server)
    return { url: `http://127.0.0.1:${server.port}`, events }
  }

  it('answers 429 with Retry-After to an address that failed too often, and only to that address', async () => {
    const { url, events } = await startRegistryServer('limited')
    for (let i = 0; i < 3; i++) {
      expect((await call(`${url}/v2/`, { headers: basic(USER, `guess-${i}`) })).status).toBe(401)
    }
    const slowed = await call(`${url}/v2/`, { headers: basic(USER, PASSWORD) })
    expect(slowed.status).toBe(429)
    expect(Number(slowed.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(JSON.parse(slowed.body).errors[0].code).toBe('TOOMANYREQUESTS')
    expect(
      events.some((e) => e.type === 'log' && e.code === 'W_REGISTRY_AUTH' && /429/.test(e.message)),
    ).toBe(true)
    // Another address is not slowed down.
    const other = await call(`${url}/v2/`, { headers: basic(USER, PASSWORD), localAddress: '127.0.0.2' })
    expect(other.status).toBe(200)
    // Once the failures leave the window, the right password works again from the first address.
    await new Promise((r) => setTimeout(r, Number(slowed.headers['retry-after']) * 1000 + 200))
    expect((await call(`${url}/v2/`, { headers: basic(USER, PASSWORD) })).status).toBe(200)
  })

  it('refuses an upload the disk has no room for with 507 and an OCI error body, and warns', async () => {
    const { url, events } = await startRegistryServer('full', { minFreeBytes: 2 ** 62 })
    const body = Buffer.from('a blob that does not fit')
    const answer = await call(`${url}/v2/site/app/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, {
      method: 'POST',
      headers: { ...basic(USER, PASSWORD), 'content-length': String(body.length) },
      body,
    })
    expect(answer.status).toBe(507)
    expect(JSON.parse(answer.body).errors[0]).toMatchObject({
      message: expect.stringContaining('disk space'),
    })
    expect(events).toContainEqual(expect.objectContaining({ level: 'warn', code: 'W_REGISTRY_DISK_FULL' }))
  })

  it('closes connections whose headers never finish, and bodies that stall, but not slow uploads', async () => {
    let received = 0
    const server = await startSiteServer({
      host: '127.0.0.1',
      port: 0,
      timeouts: { headersMs: 1000, idleMs: 3000 },
      sink: silentSink,
      handlers: [
        async (req, res) => {
          for await (const chunk of req) received += (chunk as Buffer).length
          res.writeHead(200).end(`${received}`)
          return true
        },
      ],
    })
    servers.push(server)
    const headers = await closedAfter(server.port, 'PUT / HTTP/1.1\r\nHost: x\r\n', 8000)
    expect(headers).not.toBe('open')
    expect(headers).toBeLessThan(4000)
    const stalled = await closedAfter(
      server.port,
      'PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789',
      12_000,
    )
    expect(stalled).not.toBe('open')
    expect(stalled).toBeGreaterThanOrEqual(2500)

    // A body that keeps moving runs well past both timeouts.
    received = 0
    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`http://127.0.0.1:${server.port}/`, { method: 'PUT' }, (res) => {
        let text = ''
        res.on('data', (c: Buffer) => {
          text += c
        })
        res.on('end', () => resolve(text))
      })
      req.on('error', reject)
      let sent = 0
      const tick = setInterval(() => {
        req.write(Buffer.alloc(1000))
        if (++sent === 20) {
          clearInterval(tick)
          req.end()
        }
      }, 250)
    })
    expect(answer).toBe('20000')
  })

  it('warns when serve --insecure has registry users: their passwords would cross the network in cleartext', async () => {
    const events: ProgressEvent[] = []
    const served = await serveBundle({
      bundle: bundlePath,
      host: '127.0.0.1',
      port: 0,
      advertise: ['127.0.0.1'],
      stateDir: join(work, 'state'),
      insecure: true,
      users: ['pusher'],
      sink: { emit: (e) => events.push(e) },
    })
    await served.stop()
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'log', level: 'warn', code: 'W_SERVE_CLEARTEXT' }),
    )
    const quiet: ProgressEvent[] = []
    const anonymous = await serveBundle({
      bundle: bundlePath,
      host: '127.0.0.1',
      port: 0,
      advertise: ['127.0.0.1'],
      stateDir: join(work, 'state-anonymous'),
      insecure: true,
      sink: { emit: (e) => quiet.push(e) },
    })
    await anonymous.stop()
    expect(quiet.some((e) => e.type === 'log' && e.code === 'W_SERVE_CLEARTEXT')).toBe(false)
  })

  it('chooses AES-128-GCM over a client that asks for AES-256 first, and ChaCha20 for a client that asks for it first', async () => {
    const ca = await loadOrCreateSiteCa(join(work, 'cipher-ca'))
    const cert = await issueServerCertificate(ca, { hosts: ['127.0.0.1'] })
    const server = await startSiteServer({
      host: '127.0.0.1',
      port: 0,
      tls: { certPem: cert.certPem, keyPem: cert.keyPem },
      sink: silentSink,
      handlers: [],
    })
    servers.push(server)
    const negotiated = (options: { ciphers?: string; maxVersion?: 'TLSv1.2' }) =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect(
          { host: '127.0.0.1', port: server.port, ca: ca.certPem, ...options },
          () => {
            resolve(`${socket.getProtocol()} ${socket.getCipher().standardName}`)
            socket.end()
          },
        )
        socket.on('error', reject)
      })
    // OpenSSL's own order (curl's): AES-256-GCM first.
    expect(
      await negotiated({
        ciphers: 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256',
      }),
    ).toBe('TLSv1.3 TLS_AES_128_GCM_SHA256')
    expect(await negotiated({ ciphers: 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256' })).toBe(
      'TLSv1.3 TLS_CHACHA20_POLY1305_SHA256',
    )
    expect(
      await negotiated({
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256',
      }),
    ).toBe('TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256')
  })
})
