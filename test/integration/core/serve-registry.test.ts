import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fetch, type RequestInit, type Response } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFromDefinition } from '../../../src/bundle/bundle-from-definition.js'
import type { BundleMetadata, LockedImage } from '../../../src/bundle/metadata.js'
import { BundleReader } from '../../../src/bundle/reader.js'
import { type ProgressEvent, silentSink } from '../../../src/events/types.js'
import { MANIFEST_ACCEPT } from '../../../src/oci/media-types.js'
import { createHtpasswdEntry } from '../../../src/serve/htpasswd.js'
import { createRegistryHandler, type RegistryHandlerOptions } from '../../../src/serve/registry-handler.js'
import { createChart, helm } from '../../support/charts.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pushImage } from '../../support/images.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { createTlsMaterial } from '../../support/tls.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

interface Served {
  url: string
  host: string
  /** "METHOD path status" of every request, to see what a client really did. */
  requests: string[]
  close(): Promise<void>
}

/** The handler on a real node:http(s) server on loopback; anything outside /v2 is a plain 404. */
async function serve(options: RegistryHandlerOptions, tls?: { cert: string; key: string }): Promise<Served> {
  const handler = createRegistryHandler(options)
  await handler.ready()
  const requests: string[] = []
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    res.on('finish', () => requests.push(`${req.method} ${req.url} ${res.statusCode}`))
    handler(req, res).then(
      (handled) => {
        if (!handled) res.writeHead(404).end('not found')
      },
      () => res.destroy(),
    )
  }
  const server: Server = tls ? createHttpsServer(tls, listener) : createHttpServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/**
 * The site registry served straight out of a real bundle: the bundle is made by the real bundle code from a real
 * distribution registry, then the handler serves it on node:http and node:https, and the REAL clients read and write
 * it: skopeo (copy, inspect, push with htpasswd credentials), helm (pull oci://), Debian's docker-registry as a
 * pull-through cache in front of it, and plain HTTP requests for what clients do not exercise.
 */
describe('site registry', () => {
  const USER = 'pusher'
  const PASSWORD = 'push-Secret-42'
  let work: string
  let upstream: TestRegistry
  let files: FileServer
  let reader: BundleReader
  let meta: BundleMetadata
  let registry: Served
  let options: RegistryHandlerOptions
  const events: ProgressEvent[] = []
  const image = (name: string): LockedImage => meta.images.find((i) => i.name === name)!

  const skopeo = async (args: string[]) => {
    try {
      return await run(findTool('skopeo'), ['--insecure-policy', ...args], {
        env: { ...process.env, REGISTRY_AUTH_FILE: join(work, 'auth.json') },
        timeout: 120_000,
        maxBuffer: 16 << 20,
      })
    } catch (error) {
      const e = error as { stderr?: string; message: string }
      throw new Error(`skopeo ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: error })
    }
  }
  const get = (path: string, init: RequestInit = {}, base = registry.url): Promise<Response> =>
    fetch(base + path, init)
  const basic = (user: string, password: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  })
  const errorCode = async (res: Response) =>
    ((await res.json()) as { errors: { code: string }[] }).errors[0]!.code

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-serve-registry-'))
    mkdirSync(join(work, 'pulled'))
    mkdirSync(join(work, 'via-cache'))
    upstream = await startRegistry({ flavor: 'distribution-v3' })
    const arm = { os: 'linux', architecture: 'arm64', variant: 'v8' }
    const amd = { os: 'linux', architecture: 'amd64' }
    await pushImage(upstream, {
      repository: 'docker.io/library/multi',
      tag: '1.0',
      platforms: [amd, arm],
      layers: [
        { seed: 'base', size: 400_000, sharedAcrossPlatforms: true },
        { seed: 'multi', size: 100_000 },
      ],
    })
    await pushImage(upstream, {
      repository: 'docker.io/library/legacy',
      tag: '2.0',
      format: 'docker',
      // Larger than the size from which the registry reads a blob through file handles of its own.
      layers: [{ seed: 'legacy', size: 6_000_000 }],
    })
    await pushImage(upstream, {
      repository: 'docker.io/nvidia/cuda',
      tag: '1',
      layers: [{ seed: 'hub-cuda', size: 150_000 }],
    })
    await pushImage(upstream, {
      repository: 'nvcr.io/nvidia/cuda',
      tag: '1',
      format: 'docker',
      layers: [{ seed: 'ngc-cuda', size: 150_000 }],
    })
    const site = join(work, 'site')
    mkdirSync(join(site, 'stable'), { recursive: true })
    await createChart(join(site, 'stable'), {
      name: 'worker',
      version: '0.1.0',
      images: ['docker.io/library/legacy:2.0'],
    })
    rmSync(join(site, 'stable', 'worker'), { recursive: true })
    await run(findTool('helm'), ['repo', 'index', join(site, 'stable')])
    files = await startFileServer(site)

    const definition = join(work, 'site-registry.json')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'site-registry', version: '1.0.0' },
        platforms: ['linux/amd64'],
        images: [
          { ref: 'docker.io/library/multi:1.0', platforms: ['linux/amd64', 'linux/arm64'] },
          'docker.io/nvidia/cuda:1',
          'nvcr.io/nvidia/cuda:1',
        ],
        charts: [{ name: 'worker', version: '0.1.0', repo: 'https://charts.example.org/stable' }],
      }),
    )
    const bundle = await bundleFromDefinition({
      definition,
      outputDir: join(work, 'out'),
      mirrors: {
        'docker.io': `${upstream.url}/docker.io`,
        'nvcr.io': `${upstream.url}/nvcr.io`,
        'https://charts.example.org': files.url,
      },
      helm: findTool('helm'),
      toolVersion: 'test',
      sink: silentSink,
    })
    await upstream.stop()
    await files.stop()
    reader = await BundleReader.open(bundle.path)
    meta = reader.metadata
    expect(meta.images.map((i) => `${i.name}:${i.tag}`).sort()).toEqual([
      'docker.io/library/legacy:2.0',
      'docker.io/library/multi:1.0',
      'docker.io/nvidia/cuda:1',
      'nvcr.io/nvidia/cuda:1',
    ])

    const htpasswd = join(work, 'htpasswd')
    writeFileSync(htpasswd, `${createHtpasswdEntry(USER, PASSWORD, 6)}\n`)
    options = {
      reader,
      overlayDir: join(work, 'overlay'),
      auth: { htpasswdFile: htpasswd },
      sink: { emit: (event) => events.push(event) },
    }
    registry = await serve(options)
  })

  afterAll(async () => {
    await registry?.close()
    await reader?.close()
    await upstream?.stop()
    await files?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('answers the API version check, and challenges anonymous pings so clients send credentials', async () => {
    const anonymous = await get('/v2/')
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="astrago-airgap"')
    expect(anonymous.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
    const user = await get('/v2/', { headers: basic(USER, PASSWORD) })
    expect(user.status).toBe(200)
    expect(user.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
    const wrong = await get('/v2/', { headers: basic(USER, 'nope') })
    expect(wrong.status).toBe(401)
    expect(await errorCode(wrong)).toBe('UNAUTHORIZED')
  })

  it('skopeo copies every image with the digests of the lock', async () => {
    for (const locked of meta.images) {
      const ref = `docker://${registry.host}/${locked.name}:${locked.tag}`
      const target = join(work, 'pulled', locked.name.replaceAll('/', '_'))
      await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', ref, `dir:${target}`])
      expect(sha256(readFileSync(join(target, 'manifest.json'))), locked.name).toBe(locked.digest)
      const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', ref])
      expect(sha256(raw.stdout)).toBe(locked.digest)
    }
    // The multi-platform OCI index and the Docker v2 image keep their types.
    expect(image('docker.io/library/multi').mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(image('docker.io/library/multi').platforms).toEqual(['linux/amd64', 'linux/arm64/v8'])
    expect(image('docker.io/library/legacy').mediaType).toBe(
      'application/vnd.docker.distribution.manifest.v2+json',
    )
    // Each platform's manifest is served by digest, with its own media type.
    const arm = image('docker.io/library/multi').manifests[1]!
    const res = await get(`/v2/docker.io/library/multi/manifests/${arm.digest}`, {
      headers: { accept: MANIFEST_ACCEPT },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json')
    expect(res.headers.get('docker-content-digest')).toBe(arm.digest)
    expect(Number(res.headers.get('content-length'))).toBe(arm.size)
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(arm.digest)
  })

  it('finds the same image by ?ns= and by full path, and keeps docker.io and nvcr.io apart', async () => {
    const digestOf = async (path: string) => {
      const res = await get(path, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } })
      expect(res.status, path).toBe(200)
      return res.headers.get('docker-content-digest')
    }
    const multi = image('docker.io/library/multi').digest
    expect(await digestOf('/v2/docker.io/library/multi/manifests/1.0')).toBe(multi)
    expect(await digestOf('/v2/library/multi/manifests/1.0?ns=docker.io')).toBe(multi)
    expect(await digestOf('/v2/multi/manifests/1.0?ns=docker.io')).toBe(multi)
    expect(await digestOf('/v2/library/multi/manifests/1.0')).toBe(multi)

    const hub = image('docker.io/nvidia/cuda').digest
    const ngc = image('nvcr.io/nvidia/cuda').digest
    expect(hub).not.toBe(ngc)
    expect(await digestOf('/v2/nvidia/cuda/manifests/1?ns=nvcr.io')).toBe(ngc)
    expect(await digestOf('/v2/nvcr.io/nvidia/cuda/manifests/1')).toBe(ngc)
    expect(await digestOf('/v2/nvidia/cuda/manifests/1?ns=docker.io')).toBe(hub)
    expect(await digestOf('/v2/docker.io/nvidia/cuda/manifests/1')).toBe(hub)
    // Unqualified, nvidia/cuda means Docker Hub's, as for any Docker client.
    expect(await digestOf('/v2/nvidia/cuda/manifests/1')).toBe(hub)
    // The same path under an upstream the bundle does not have is unknown, not another upstream's image.
    const other = await get('/v2/nvidia/cuda/manifests/1?ns=quay.io')
    expect(other.status).toBe(404)
    expect(await errorCode(other)).toBe('NAME_UNKNOWN')
    // A blob of one repository is not served under a repository the registry does not know.
    const layer = `/blobs/${image('nvcr.io/nvidia/cuda').manifests[0]!.digest}`
    expect((await get(`/v2/nvcr.io/nvidia/cuda${layer}`, { method: 'HEAD' })).status).toBe(200)
    expect((await get(`/v2/quay.io/nvidia/cuda${layer}`, { method: 'HEAD' })).status).toBe(404)
  })

  it('serves the chart to helm pull oci://, with the bundle sha256', async () => {
    const chart = meta.charts[0]!
    expect(chart.oci.repository).toBe('charts/worker')
    const dest = join(work, 'helm-pull')
    mkdirSync(dest)
    await helm(
      [
        'pull',
        `oci://${registry.host}/charts/worker`,
        '--version',
        chart.version,
        '--plain-http',
        '--destination',
        dest,
      ],
      { home: join(work, 'helm-home') },
    )
    const tgz = readFileSync(join(dest, `worker-${chart.version}.tgz`))
    expect(sha256(tgz)).toBe(`sha256:${chart.sha256}`)
    const tags = await (await get('/v2/charts/worker/tags/list')).json()
    expect(tags).toEqual({ name: 'charts/worker', tags: ['0.1.0'] })
  })

  it('answers Range requests on blobs with 206 and the right bytes, and 416 outside the blob', async () => {
    const manifest = JSON.parse(
      readFileSync(join(work, 'pulled', 'docker.io_library_legacy', 'manifest.json'), 'utf8'),
    ) as { layers: { digest: string; size: number }[] }
    const layer = manifest.layers[0]!
    const path = `/v2/docker.io/library/legacy/blobs/${layer.digest}`
    const full = Buffer.from(await (await get(path)).arrayBuffer())
    expect(full.length).toBe(layer.size)
    expect(sha256(full)).toBe(layer.digest)

    const head = await get(path, { method: 'HEAD' })
    expect(head.headers.get('accept-ranges')).toBe('bytes')
    expect(Number(head.headers.get('content-length'))).toBe(layer.size)
    expect(head.headers.get('docker-content-digest')).toBe(layer.digest)

    const part = await get(path, { headers: { range: 'bytes=1000-200999' } })
    expect(part.status).toBe(206)
    expect(part.headers.get('content-range')).toBe(`bytes 1000-200999/${layer.size}`)
    expect(Buffer.from(await part.arrayBuffer()).equals(full.subarray(1000, 201000))).toBe(true)
    const tail = await get(path, { headers: { range: 'bytes=-100' } })
    expect(Buffer.from(await tail.arrayBuffer()).equals(full.subarray(full.length - 100))).toBe(true)
    const open = await get(path, { headers: { range: `bytes=${layer.size - 10}-` } })
    expect(open.headers.get('content-range')).toBe(`bytes ${layer.size - 10}-${layer.size - 1}/${layer.size}`)
    expect((await open.arrayBuffer()).byteLength).toBe(10)
    const outside = await get(path, { headers: { range: `bytes=${layer.size}-` } })
    expect(outside.status).toBe(416)
    expect(outside.headers.get('content-range')).toBe(`bytes */${layer.size}`)
    expect(await errorCode(outside)).toBe('RANGE_INVALID')
    const inverted = await get(path, { headers: { range: 'bytes=2000-1000' } })
    expect(inverted.status).toBe(416)
    expect(inverted.headers.get('content-range')).toBe(`bytes */${layer.size}`)
    expect(await errorCode(inverted)).toBe('RANGE_INVALID')
  })

  it('pages the catalog and tags lists with n, last and Link', async () => {
    const all = (await (await get('/v2/_catalog')).json()) as { repositories: string[] }
    expect(all.repositories).toEqual(
      expect.arrayContaining([
        'charts/worker',
        'docker.io/library/legacy',
        'docker.io/library/multi',
        'docker.io/nvidia/cuda',
        'nvcr.io/nvidia/cuda',
      ]),
    )
    expect([...all.repositories].sort()).toEqual(all.repositories)
    const seen: string[] = []
    let next: string | undefined = '/v2/_catalog?n=2'
    let pages = 0
    while (next) {
      const res = await get(next)
      const body = (await res.json()) as { repositories: string[] }
      expect(body.repositories.length).toBeLessThanOrEqual(2)
      seen.push(...body.repositories)
      pages++
      next = /^<([^>]+)>; rel="next"$/.exec(res.headers.get('link') ?? '')?.[1]
    }
    expect(seen).toEqual(all.repositories)
    expect(pages).toBe(Math.ceil(all.repositories.length / 2))
    const after = await (await get('/v2/_catalog?last=docker.io/nvidia/cuda')).json()
    expect(after).toMatchObject({ repositories: all.repositories.filter((r) => r > 'docker.io/nvidia/cuda') })

    const tags = await (await get('/v2/library/multi/tags/list?ns=docker.io&n=1')).json()
    expect(tags).toEqual({ name: 'library/multi', tags: ['1.0'] })
  })

  it('answers unknown names, manifests and blobs with OCI error codes', async () => {
    const cases: [string, number, string][] = [
      ['/v2/docker.io/library/absent/manifests/1', 404, 'NAME_UNKNOWN'],
      ['/v2/docker.io/library/multi/manifests/9.9', 404, 'MANIFEST_UNKNOWN'],
      [`/v2/docker.io/library/multi/manifests/sha256:${'0'.repeat(64)}`, 404, 'MANIFEST_UNKNOWN'],
      [`/v2/docker.io/library/multi/blobs/sha256:${'0'.repeat(64)}`, 404, 'BLOB_UNKNOWN'],
      ['/v2/docker.io/library/multi/blobs/sha256:abc', 400, 'DIGEST_INVALID'],
      ['/v2/docker.io/Library/multi/tags/list', 400, 'NAME_INVALID'],
    ]
    for (const [path, status, code] of cases) {
      const res = await get(path)
      expect(res.status, path).toBe(status)
      expect(res.headers.get('content-type')).toBe('application/json')
      expect(await errorCode(res), path).toBe(code)
    }
    // A manifest of another repository is not served by digest under this one.
    const ngc = image('nvcr.io/nvidia/cuda').digest
    expect((await get(`/v2/docker.io/nvidia/cuda/manifests/${ngc}`)).status).toBe(404)
    // Outside /v2 the handler declines, for the file server.
    expect((await get('/files/x')).status).toBe(404)
    expect(await (await get('/files/x')).text()).toBe('not found')
  })

  it('takes pushes from skopeo with htpasswd credentials, refuses them without, and keeps them over a restart', async () => {
    const source = `dir:${join(work, 'pulled', 'docker.io_library_multi')}`
    const target = `docker://${registry.host}/docker.io/site/pushed:1`
    await expect(
      skopeo(['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', source, target]),
    ).rejects.toThrow(/unauthorized|authentication required/i)
    await expect(
      skopeo(['copy', '--all', '--dest-tls-verify=false', '--dest-creds', `${USER}:wrong`, source, target]),
    ).rejects.toThrow(/unauthorized|authentication required/i)
    await skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${USER}:${PASSWORD}`,
      source,
      target,
    ])
    const digest = image('docker.io/library/multi').digest
    const inspect = async (host: string) =>
      sha256(
        (await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/docker.io/site/pushed:1`]))
          .stdout,
      )
    expect(await inspect(registry.host)).toBe(digest)
    // A retag of a bundle image into its own repository is served before the bundle's tags.
    await skopeo([
      'copy',
      '--dest-tls-verify=false',
      '--src-tls-verify=false',
      '--dest-creds',
      `${USER}:${PASSWORD}`,
      `docker://${registry.host}/docker.io/library/legacy:2.0`,
      `docker://${registry.host}/docker.io/library/legacy:site`,
    ])
    const tags = await (await get('/v2/docker.io/library/legacy/tags/list')).json()
    expect(tags).toEqual({ name: 'docker.io/library/legacy', tags: ['2.0', 'site'] })

    await registry.close()
    registry = await serve(options)
    expect(await inspect(registry.host)).toBe(digest)
    const catalog = (await (await get('/v2/_catalog')).json()) as { repositories: string[] }
    expect(catalog.repositories).toContain('docker.io/site/pushed')
    // Pushes and refusals are reported as events; no password ever appears in them.
    const logs = events.flatMap((e) => (e.type === 'log' ? [e] : []))
    expect(
      logs.some(
        (e) =>
          e.code === 'I_REGISTRY_PUSH' &&
          e.data?.repository === 'docker.io/site/pushed' &&
          e.data.reference === '1',
      ),
    ).toBe(true)
    expect(logs.some((e) => e.code === 'W_REGISTRY_AUTH' && e.data?.user === USER)).toBe(true)
    expect(JSON.stringify(events)).not.toContain(PASSWORD)
    const copy = join(work, 'pulled-again')
    await skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      `docker://${registry.host}/docker.io/site/pushed:1`,
      `dir:${copy}`,
    ])
    expect(sha256(readFileSync(join(copy, 'manifest.json')))).toBe(digest)
  })

  it('takes a chunked upload, verifies its digest, and mounts blobs across repositories', async () => {
    const auth = basic(USER, PASSWORD)
    const repo = '/v2/docker.io/site/chunked'
    const data = Buffer.alloc(300_000, 7)
    data.write('astrago chunked upload')
    const digest = sha256(data)

    const start = await get(`${repo}/blobs/uploads/`, { method: 'POST', headers: auth })
    expect(start.status).toBe(202)
    const uuid = start.headers.get('docker-upload-uuid')!
    let location = start.headers.get('location')!
    expect(location).toBe(`${repo}/blobs/uploads/${uuid}`)
    const first = await get(location, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': '0-99999' },
      body: data.subarray(0, 100_000),
    })
    expect(first.status).toBe(202)
    expect(first.headers.get('range')).toBe('0-99999')
    location = first.headers.get('location')!
    // A chunk that does not continue where the upload ends is refused, and changes nothing.
    const gap = await get(location, {
      method: 'PATCH',
      headers: { ...auth, 'content-range': '200000-200009' },
      body: Buffer.alloc(10),
    })
    expect(gap.status).toBe(416)
    const second = await get(location, {
      method: 'PATCH',
      headers: { ...auth, 'content-range': `100000-${data.length - 1}` },
      body: data.subarray(100_000),
    })
    expect(second.status).toBe(202)
    expect(second.headers.get('range')).toBe(`0-${data.length - 1}`)
    const status = await get(location, { headers: auth })
    expect(status.status).toBe(204)
    expect(status.headers.get('range')).toBe(`0-${data.length - 1}`)
    const done = await get(`${second.headers.get('location')}?digest=${digest}`, {
      method: 'PUT',
      headers: auth,
    })
    expect(done.status).toBe(201)
    expect(done.headers.get('location')).toBe(`${repo}/blobs/${digest}`)
    expect(done.headers.get('docker-content-digest')).toBe(digest)
    const back = await get(`${repo}/blobs/${digest}`)
    expect(Buffer.from(await back.arrayBuffer()).equals(data)).toBe(true)

    // Monolithic upload with the wrong digest.
    const wrong = await get(`${repo}/blobs/uploads/?digest=${sha256('other')}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: Buffer.from('not other'),
    })
    expect(wrong.status).toBe(400)
    expect(await errorCode(wrong)).toBe('DIGEST_INVALID')
    const right = await get(`${repo}/blobs/uploads/?digest=${sha256('small blob')}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: Buffer.from('small blob'),
    })
    expect(right.status).toBe(201)

    // Mount a bundle layer into a new repository: 201 without any upload.
    const layer = image('nvcr.io/nvidia/cuda')
    const manifest = JSON.parse(
      readFileSync(join(work, 'pulled', 'nvcr.io_nvidia_cuda', 'manifest.json'), 'utf8'),
    )
    const layerDigest = manifest.layers[0].digest as string
    const mount = await get(
      `/v2/docker.io/site/mounted/blobs/uploads/?mount=${layerDigest}&from=nvcr.io/nvidia/cuda`,
      {
        method: 'POST',
        headers: auth,
      },
    )
    expect(mount.status).toBe(201)
    expect(mount.headers.get('location')).toBe(`/v2/docker.io/site/mounted/blobs/${layerDigest}`)
    expect((await get(`/v2/docker.io/site/mounted/blobs/${layerDigest}`, { method: 'HEAD' })).status).toBe(
      200,
    )
    // Mounting what the registry does not have starts an upload instead.
    const missing = await get(
      `/v2/docker.io/site/mounted/blobs/uploads/?mount=${sha256('absent')}&from=x/y`,
      {
        method: 'POST',
        headers: auth,
      },
    )
    expect(missing.status).toBe(202)
    expect(missing.headers.get('location')).toMatch(/\/blobs\/uploads\/[0-9a-f-]{36}$/)

    // A manifest whose blobs are missing is refused; one whose blobs are there is stored and tagged.
    const put = (body: unknown, ref: string) =>
      get(`/v2/docker.io/site/mounted/manifests/${ref}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': manifest.mediaType },
        body: JSON.stringify(body),
      })
    const broken = await put(
      { ...manifest, layers: [{ ...manifest.layers[0], digest: sha256('absent') }] },
      'x',
    )
    expect(broken.status).toBe(400)
    expect(await errorCode(broken)).toBe('MANIFEST_BLOB_UNKNOWN')
    const ok = await put(manifest, 'v1')
    expect(ok.status).toBe(201)
    // Tags are data, whatever their name.
    expect((await put(manifest, '__proto__')).status).toBe(201)
    expect((await get('/v2/docker.io/site/mounted/manifests/__proto__')).status).toBe(200)
    expect((await get('/v2/docker.io/site/mounted/manifests/constructor')).status).toBe(404)
    expect(await (await get('/v2/docker.io/site/mounted/tags/list')).json()).toEqual({
      name: 'docker.io/site/mounted',
      tags: ['__proto__', 'v1'],
    })
    expect(ok.headers.get('docker-content-digest')).toBe(sha256(JSON.stringify(manifest)))
    expect(layer.name).toBe('nvcr.io/nvidia/cuda')
    const anonymousPush = await get('/v2/docker.io/site/mounted/blobs/uploads/', { method: 'POST' })
    expect(anonymousPush.status).toBe(401)
    expect(anonymousPush.headers.get('www-authenticate')).toBe('Basic realm="astrago-airgap"')
    // Bundle content is read-only; overlay content can be deleted.
    const del = await get(`/v2/docker.io/library/multi/manifests/1.0`, { method: 'DELETE', headers: auth })
    expect(del.status).toBe(405)
    expect(await errorCode(del)).toBe('UNSUPPORTED')
    expect(
      (await get('/v2/docker.io/site/mounted/manifests/v1', { method: 'DELETE', headers: auth })).status,
    ).toBe(202)
    expect((await get('/v2/docker.io/site/mounted/manifests/v1')).status).toBe(404)
  })

  it('serves over TLS with a site CA', async () => {
    const tls = createTlsMaterial(join(work, 'tls-registry'), ['127.0.0.1'])
    const secure = await serve(
      { ...options, overlayDir: join(work, 'overlay-tls') },
      { cert: readFileSync(tls.certFile, 'utf8'), key: readFileSync(tls.keyFile, 'utf8') },
    )
    try {
      const cuda = image('nvcr.io/nvidia/cuda')
      const target = join(work, 'pulled-tls')
      await skopeo([
        'copy',
        '--preserve-digests',
        '--src-cert-dir',
        tls.certDir,
        `docker://${secure.host}/nvidia/cuda:1`,
        `dir:${target}`,
      ])
      expect(sha256(readFileSync(join(target, 'manifest.json')))).toBe(image('docker.io/nvidia/cuda').digest)
      const raw = await skopeo([
        'inspect',
        '--raw',
        '--cert-dir',
        tls.certDir,
        `docker://${secure.host}/nvcr.io/nvidia/cuda:1`,
      ])
      expect(sha256(raw.stdout)).toBe(cuda.digest)
    } finally {
      await secure.close()
    }
  })

  it('serves a bundle split into volumes, blobs and ranges crossing the volume boundaries', async () => {
    const dir = join(work, 'split')
    mkdirSync(dir)
    // 150 KB volumes: every layer of the multi-platform image spans several of them.
    await run('split', ['-b', '150000', '-d', '-a', '3', reader.volumes.paths[0]!, join(dir, 'b.tar.')])
    const volumes = await BundleReader.open(join(dir, 'b.tar'))
    expect(volumes.volumes.paths.length).toBeGreaterThan(5)
    const split = await serve({ reader: volumes, overlayDir: join(work, 'overlay-split') })
    try {
      const multi = image('docker.io/library/multi')
      const target = join(work, 'pulled-split')
      await skopeo([
        'copy',
        '--all',
        '--preserve-digests',
        '--src-tls-verify=false',
        `docker://${split.host}/docker.io/library/multi:1.0`,
        `dir:${target}`,
      ])
      expect(sha256(readFileSync(join(target, 'manifest.json')))).toBe(multi.digest)
      const amd = JSON.parse(
        readFileSync(join(target, `${multi.manifests[0]!.digest.slice(7)}.manifest.json`), 'utf8'),
      )
      const layer = amd.layers[0] as { digest: string; size: number }
      const path = `/v2/docker.io/library/multi/blobs/${layer.digest}`
      const whole = Buffer.from(await (await get(path, {}, split.url)).arrayBuffer())
      expect(sha256(whole)).toBe(layer.digest)
      const part = await get(path, { headers: { range: 'bytes=140000-310000' } }, split.url)
      expect(part.status).toBe(206)
      expect(Buffer.from(await part.arrayBuffer()).equals(whole.subarray(140000, 310001))).toBe(true)
      // A large blob, read through handles of its own on the volumes it spans (blob-read-handles.ts).
      const legacy = JSON.parse(
        readFileSync(join(work, 'pulled', 'docker.io_library_legacy', 'manifest.json'), 'utf8'),
      ).layers[0] as { digest: string; size: number }
      expect(legacy.size).toBeGreaterThan(4 << 20)
      const large = `/v2/docker.io/library/legacy/blobs/${legacy.digest}`
      const all = Buffer.from(await (await get(large, {}, split.url)).arrayBuffer())
      expect(sha256(all)).toBe(legacy.digest)
      const range = await get(large, { headers: { range: 'bytes=1000-5000999' } }, split.url)
      expect(range.status).toBe(206)
      expect(Buffer.from(await range.arrayBuffer()).equals(all.subarray(1000, 5001000))).toBe(true)
    } finally {
      await split.close()
      await volumes.close()
    }
  })

  it("works as the upstream of Debian's docker-registry pull-through cache", async () => {
    const cache = await startRegistry({
      flavor: 'distribution-v2',
      extraConfig: { proxy: { remoteurl: registry.url } },
    })
    try {
      for (const name of ['docker.io/library/legacy', 'docker.io/library/multi']) {
        const locked = image(name)
        const target = join(work, 'via-cache', name.replaceAll('/', '_'))
        await skopeo([
          'copy',
          '--all',
          '--preserve-digests',
          '--src-tls-verify=false',
          `docker://${cache.host}/${name}:${locked.tag}`,
          `dir:${target}`,
        ])
        expect(sha256(readFileSync(join(target, 'manifest.json'))), name).toBe(locked.digest)
        // The cache really fetched it from the site registry.
        expect(registry.requests).toContain(`GET /v2/${name}/manifests/${locked.tag} 200`)
      }
    } finally {
      await cache.stop()
    }
  })
})
