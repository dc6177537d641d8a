import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentSink } from '../../../src/events/types.js'
import { sha256Digest } from '../../../src/oci/digest.js'
import { CLIENT_ADDRESS_HEADER } from '../../../src/serve/registry-auth.js'
import { type ServeWorker, startServeWorker } from '../../../src/serve/serve-worker.js'
import { freePort } from '../../support/net.js'
import { bundleOneImage, type OneImageBundle } from '../../support/one-image-bundle.js'

/**
 * A worker of `serve --workers` in this process, on a real bundle, with a stand-in primary on its unix socket that
 * records what it is handed: which requests the worker answers itself and which it hands on.
 */
describe('a serve worker', () => {
  let work: string
  let fixture: OneImageBundle
  let primary: Server
  let worker: ServeWorker
  let base: string
  const handedOn: { method: string; url: string; headers: IncomingHttpHeaders }[] = []
  let layer: { digest: string; sha256: string }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-serve-worker-'))
    fixture = await bundleOneImage(work, {
      image: 'docker.io/library/busybox:1.36',
      size: 300_000,
      name: 'workers',
      version: '1.0.0',
      args: ['--no-installer'],
    })
    const socket = join(work, 'primary.sock')
    primary = createServer((req, res) => {
      handedOn.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
      req.resume()
      res.writeHead(299, { 'x-primary': 'yes' }).end('from the primary')
    })
    await new Promise<void>((resolve) => primary.listen(socket, resolve))
    const port = await freePort()
    const bundleJson = execFileSync('tar', ['-xOf', fixture.bundle, 'bundle.json'])
    worker = await startServeWorker(
      {
        bundle: fixture.bundle,
        bundleJsonDigest: sha256Digest(bundleJson),
        host: '127.0.0.1',
        port,
        anonymousPull: true,
        primarySocket: socket,
      },
      silentSink,
    )
    base = `http://127.0.0.1:${port}`
    const res = await fetch(
      `${fixture.upstream.url}/v2/docker.io/library/busybox/manifests/${fixture.digest}`,
      {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      },
    )
    const manifest = (await res.json()) as { layers: { digest: string }[] }
    const digest = manifest.layers[0]!.digest
    layer = { digest, sha256: digest.slice('sha256:'.length) }
  }, 120_000)

  afterAll(async () => {
    await worker?.close()
    await new Promise((resolve) => primary?.close(resolve))
    await fixture?.upstream.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, { headers })
    const body = Buffer.from(await res.arrayBuffer())
    return { status: res.status, body, headers: res.headers }
  }

  it('answers an anonymous GET of a bundle blob under its full name itself, and HEAD', async () => {
    const before = handedOn.length
    const full = await get(`/v2/docker.io/library/busybox/blobs/${layer.digest}`)
    expect(full.status).toBe(200)
    expect(createHash('sha256').update(full.body).digest('hex')).toBe(layer.sha256)
    expect(full.headers.get('docker-content-digest')).toBe(layer.digest)
    const ns = await get(`/v2/library/busybox/blobs/${layer.digest}?ns=docker.io`)
    expect(ns.status).toBe(200)
    expect(ns.body.length).toBe(full.body.length)
    const head = await fetch(`${base}/v2/docker.io/library/busybox/blobs/${layer.digest}`, { method: 'HEAD' })
    expect([head.status, head.headers.get('content-length')]).toEqual([200, String(full.body.length)])
    expect(handedOn.length).toBe(before)
  })

  it('hands on everything else to the primary as it came, naming its client and not trusting the client to', async () => {
    const before = handedOn.length
    const cases: [string, Record<string, string>][] = [
      [`/v2/library/busybox/blobs/${layer.digest}`, {}], // unqualified: the primary resolves such names
      [`/v2/docker.io/library/busybox/blobs/${layer.digest}`, { authorization: 'Basic ZmllbGQ6d3Jvbmc=' }],
      [`/v2/docker.io/library/busybox/blobs/${layer.digest}`, { range: 'bytes=0-9' }],
      [`/v2/docker.io/library/busybox/blobs/sha256:${'0'.repeat(64)}`, {}], // not in the bundle: maybe pushed
      [`/v2/docker.io/library/busybox/manifests/1.36`, {}],
      ['/v2/', { [CLIENT_ADDRESS_HEADER]: '10.9.9.9' }],
      ['/node-setup/node-setup.sh', {}],
    ]
    for (const [path, headers] of cases) {
      const res = await get(path, headers)
      expect([path, res.status, res.body.toString(), res.headers.get('x-primary')]).toEqual([
        path,
        299,
        'from the primary',
        'yes',
      ])
    }
    const seen = handedOn.slice(before)
    expect(seen.map((r) => r.url)).toEqual(cases.map(([path]) => path))
    for (const r of seen) expect(r.headers[CLIENT_ADDRESS_HEADER]).toBe('127.0.0.1')
    expect(seen[1]!.headers.authorization).toBe('Basic ZmllbGQ6d3Jvbmc=')
    expect(seen[2]!.headers.range).toBe('bytes=0-9')
  })

  it('answers 502 when the primary is gone, for what it hands on only', async () => {
    await new Promise((resolve) => primary.close(resolve))
    primary.closeAllConnections()
    expect((await get('/v2/')).status).toBe(502)
    expect((await get(`/v2/docker.io/library/busybox/blobs/${layer.digest}`)).status).toBe(200)
  })

  it('refuses to start on a bundle other than the one the primary verified', async () => {
    await expect(
      startServeWorker(
        {
          bundle: fixture.bundle,
          bundleJsonDigest: `sha256:${'0'.repeat(64)}`,
          host: '127.0.0.1',
          port: await freePort(),
          anonymousPull: true,
          primarySocket: join(work, 'primary.sock'),
        },
        silentSink,
      ),
    ).rejects.toThrow(/no longer the bundle the server verified/)
  })
})
