import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChart } from '../../support/charts.js'
import { runCli } from '../../support/cli.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pushImage } from '../../support/images.js'
import { registryFlavors, startRegistry, type TestRegistry } from '../../support/registry.js'
import { startTokenIssuer, type TokenIssuer } from '../../support/token-issuer.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`

interface BundledArtifact {
  /** Where the push puts it, without the registry: astrago/docker.io/library/app:1.0 */
  path: string
  digest: string
  kind: 'image' | 'chart'
}

/**
 * `astrago-airgap push` into real registries: a bundle made by the real CLI (images sharing a base layer, multi-platform
 * OCI and Docker images, a Docker v2 image, a digest-only image, a 40 MB layer, a chart) is pushed into Debian's
 * distribution 2.8 behind htpasswd and TLS, and into distribution v3 over plain HTTP, then read back with skopeo and
 * helm. Interruptions are real: a TCP proxy that throttles or cuts the connection, and kill -9.
 */
describe('push', () => {
  let work: string
  let upstream: TestRegistry
  let server: FileServer
  let bundlePath: string
  let artifacts: BundledArtifact[]
  const PREFIX = 'astrago'

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-push-it-'))
    upstream = await startRegistry({ flavor: 'distribution-v3' })
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]
    const base = { seed: 'shared-base', size: 1_500_000, sharedAcrossPlatforms: true }
    await pushImage(upstream, {
      repository: 'docker.io/library/app',
      tag: '1.0',
      platforms,
      layers: [base, { seed: 'app', size: 300_000 }],
    })
    await pushImage(upstream, {
      repository: 'docker.io/library/multi',
      tag: '2.0',
      format: 'docker',
      platforms,
      layers: [base, { seed: 'multi', size: 200_000 }],
    })
    await pushImage(upstream, {
      repository: 'nvcr.io/nvidia/cuda',
      tag: '12.8.1-base',
      format: 'docker',
      layers: [{ seed: 'cuda', size: 500_000 }],
    })
    await pushImage(upstream, {
      repository: 'quay.io/demo/worker',
      tag: '2.0',
      layers: [base, { seed: 'worker', size: 100_000 }],
    })
    const pinned = await pushImage(upstream, {
      repository: 'docker.io/library/pinned',
      tag: 'any',
      layers: [base, { seed: 'pinned', size: 100_000 }],
    })
    // ~40 MB, uncompressed so it is generated as a stream: big enough to interrupt mid-upload.
    await pushImage(upstream, {
      repository: 'quay.io/demo/big',
      tag: '1.0',
      gzip: false,
      layers: [{ seed: 'big', size: 40 << 20 }],
    })

    const site = join(work, 'site')
    mkdirSync(join(site, 'charts', 'stable'), { recursive: true })
    await createChart(join(site, 'charts', 'stable'), {
      name: 'worker',
      version: '0.1.0',
      images: ['quay.io/demo/worker:2.0'],
    })
    rmSync(join(site, 'charts', 'stable', 'worker'), { recursive: true })
    await run(findTool('helm'), ['repo', 'index', join(site, 'charts', 'stable')])
    server = await startFileServer(site)

    const definition = join(work, 'push.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'pushtest', version: '1.0.0' },
        platforms: ['linux/amd64'],
        images: [
          { ref: 'docker.io/library/app:1.0', platforms: ['linux/amd64', 'linux/arm64'] },
          { ref: 'docker.io/library/multi:2.0', platforms: ['linux/amd64', 'linux/arm64'] },
          'nvcr.io/nvidia/cuda:12.8.1-base',
          `docker.io/library/pinned@${pinned.digest}`,
          'quay.io/demo/big:1.0',
        ],
        charts: [{ name: 'worker', version: '0.1.0', repo: 'https://charts.example.org/stable' }],
      }),
    )
    const bundled = await runCli([
      'bundle',
      definition,
      '--output-dir',
      join(work, 'out'),
      '--json',
      '--helm',
      findTool('helm'),
      '--mirror',
      `docker.io=${upstream.url}/docker.io`,
      '--mirror',
      `nvcr.io=${upstream.url}/nvcr.io`,
      '--mirror',
      `quay.io=${upstream.url}/quay.io`,
      '--mirror',
      `https://charts.example.org=${server.url}/charts`,
    ])
    expect(bundled.error).toBeUndefined()
    bundlePath = bundled.result.path
    const meta = (await runCli(['inspect', bundlePath, '--json'])).result.metadata
    artifacts = [
      ...meta.images.map((i: { name: string; tag?: string; digest: string }) => ({
        path: `${PREFIX}/${i.name}${i.tag ? `:${i.tag}` : `@${i.digest}`}`,
        digest: i.digest,
        kind: 'image' as const,
      })),
      ...meta.charts.map((c: { oci: { repository: string; tag: string; digest: string } }) => ({
        path: `${PREFIX}/${c.oci.repository}:${c.oci.tag}`,
        digest: c.oci.digest,
        kind: 'chart' as const,
      })),
    ]
    expect(artifacts.length).toBe(7)
    expect(artifacts.some((a) => a.path.includes('@sha256:'))).toBe(true)
  })

  afterAll(async () => {
    await server?.stop()
    await upstream?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  describe.each(registryFlavors)('into %s', (flavor) => {
    const secure = flavor === 'distribution-v2'
    let target: TestRegistry
    let firstPush: Record<string, number>

    beforeAll(async () => {
      target = await startRegistry({
        flavor,
        ...(secure ? { tls: true, credentials: { username: 'site', password: 'harbor-pass' } } : {}),
        extraConfig: { log: { level: 'info', accesslog: { disabled: false } } },
      })
    })
    afterAll(async () => {
      await target?.stop()
    })

    /** Flags and stdin for pushing to `host` (the target, or a proxy in front of it). */
    const access = (host = target.host, password = 'harbor-pass') =>
      secure
        ? {
            args: ['--ca-file', target.tls!.caFile, '--username', `${host}=site`, '--password-stdin'],
            input: `${password}\n`,
          }
        : { args: ['--insecure-registry', host], input: '' }

    const push = (options: { host?: string; prefix?: string; password?: string; extra?: string[] } = {}) => {
      const host = options.host ?? target.host
      const { args, input } = access(host, options.password)
      return runCli(
        [
          'push',
          bundlePath,
          '--registry',
          host,
          '--prefix',
          options.prefix ?? PREFIX,
          '--json',
          ...args,
          ...(options.extra ?? []),
        ],
        { input },
      )
    }

    const skopeoAccess = () =>
      secure ? ['--cert-dir', target.tls!.certDir, '--creds', 'site:harbor-pass'] : ['--tls-verify=false']

    /** The raw manifest skopeo reads back for a path in the target registry. */
    const readBack = async (path: string) =>
      (
        await run(
          findTool('skopeo'),
          ['inspect', '--raw', ...skopeoAccess(), `docker://${target.host}/${path}`],
          {
            encoding: 'buffer',
            maxBuffer: 1 << 24,
          },
        )
      ).stdout as Buffer

    const expectAllReadable = async (prefix = PREFIX) => {
      for (const artifact of artifacts) {
        const raw = await readBack(artifact.path.replace(`${PREFIX}/`, `${prefix}/`))
        expect(sha256(raw), artifact.path).toBe(artifact.digest)
      }
    }

    const writeRequests = () =>
      readFileSync(join(target.workDir, 'registry.log'), 'utf8')
        .split('\n')
        .filter((line) => /"(PUT|PATCH|POST) \/v2\/[^"]*\/blobs\/uploads/.test(line)).length

    it('pushes every image and chart under <prefix>/<full name> with its digest, layers uploaded once', async () => {
      const res = await push()
      expect(res.error).toBeUndefined()
      expect(res.code).toBe(0)
      const r = res.result
      expect(r).toMatchObject({ registry: target.host, prefix: PREFIX, images: 6, charts: 1, upToDate: 0 })
      await expectAllReadable()

      // Every blob of the bundle, counted from what the registry now serves.
      const blobs = new Map<string, number>()
      let manifests = 0
      const collect = (bytes: Buffer, path: string): Promise<void>[] => {
        manifests += 1
        const doc = JSON.parse(bytes.toString('utf8'))
        if (doc.manifests) {
          const repo = path.replace(/[:@][^/]*$/, '')
          return doc.manifests.map(async (m: { digest: string }) => {
            const child = await readBack(`${repo}@${m.digest}`)
            await Promise.all(collect(child, `${repo}@${m.digest}`))
          })
        }
        for (const b of [doc.config, ...doc.layers]) blobs.set(b.digest, b.size)
        return []
      }
      for (const artifact of artifacts)
        await Promise.all(collect(await readBack(artifact.path), artifact.path))
      const uniqueBytes = [...blobs.values()].reduce((a, b) => a + b, 0)
      expect(r.blobsUploaded).toBe(blobs.size)
      expect(r.bytesUploaded).toBe(uniqueBytes)
      expect(r.manifestsPushed).toBe(manifests)
      // The base layer is in five repositories (app, multi, worker, pinned, and both app platforms share it): uploaded
      // once, then mounted into the others.
      expect(r.blobsMounted).toBeGreaterThanOrEqual(3)
      expect(r.blobsSkipped).toBe(0)
      expect(res.events.some((e) => e.type === 'task.progress' && e.unit === 'bytes')).toBe(true)
      firstPush = { bytes: r.bytesUploaded, blobs: r.blobsUploaded }

      // Real clients read the content: every platform of the OCI index, and the chart with helm.
      const app = artifacts.find((a) => a.path.includes('/app:'))!
      await run(findTool('skopeo'), [
        '--insecure-policy',
        'copy',
        '--all',
        '--preserve-digests',
        ...skopeoAccess().map((a) =>
          a
            .replace('--cert-dir', '--src-cert-dir')
            .replace('--creds', '--src-creds')
            .replace('--tls-verify', '--src-tls-verify'),
        ),
        `docker://${target.host}/${app.path}`,
        `oci:${join(work, `copy-${flavor}`)}:app`,
      ])
      const chartDir = join(work, `chart-${flavor}`)
      mkdirSync(chartDir)
      await run(
        findTool('helm'),
        [
          'pull',
          `oci://${target.host}/${PREFIX}/charts/worker`,
          '--version',
          '0.1.0',
          '--destination',
          chartDir,
          ...(secure
            ? ['--ca-file', target.tls!.caFile, '--username', 'site', '--password', 'harbor-pass']
            : ['--plain-http']),
        ],
        {
          env: {
            ...process.env,
            HELM_REGISTRY_CONFIG: join(work, `helm-${flavor}.json`),
            HELM_CACHE_HOME: join(work, 'helm-cache'),
          },
        },
      )
      expect(readFileSync(join(chartDir, 'worker-0.1.0.tgz')).length).toBeGreaterThan(100)
    })

    it('a second push transfers nothing', async () => {
      const before = writeRequests()
      const res = await push()
      expect(res.code).toBe(0)
      expect(res.result).toMatchObject({
        upToDate: 7,
        blobsUploaded: 0,
        blobsMounted: 0,
        bytesUploaded: 0,
        manifestsPushed: 0,
      })
      expect(res.result.artifacts.every((a: { status: string }) => a.status === 'present')).toBe(true)
      expect(writeRequests()).toBe(before)
      expect(before).toBeGreaterThan(0)
    })

    if (secure) {
      it('refuses wrong credentials with exit 5, naming the registry', async () => {
        const res = await push({ prefix: 'other', password: 'wrong' })
        expect(res.code).toBe(5)
        expect(res.error?.code).toBe('E_AUTH')
        expect(res.error?.message).toContain(target.host)
        expect(res.error?.hints.join(' ')).toMatch(/--password-stdin|docker login/)
      })
    }

    it('continues an upload whose connection was cut mid-way, in the same run', async () => {
      const proxy = await startProxy(target.host, { cutAfterBytes: 20 << 20 })
      try {
        const res = await push({ host: proxy.host, prefix: 'cut' })
        expect(res.error).toBeUndefined()
        expect(res.code).toBe(0)
        expect(proxy.cuts).toBe(1)
        const codes = res.events.filter((e) => e.type === 'log').map((e) => e.code)
        // distribution 3 continues the session from the bytes it received; 2.8 (which Harbor embeds) refuses a
        // session whose last request broke off, so the blob starts over in a new one.
        expect(codes).toContain(flavor === 'distribution-v3' ? 'I_UPLOAD_RESUMED' : 'W_UPLOAD_RESTARTED')
        expect(res.result.bytesUploaded).toBe(firstPush.bytes)
        await expectAllReadable('cut')
      } finally {
        await proxy.stop()
      }
    })

    it('after kill -9 mid-upload, a rerun completes with the same digests and keeps finished work', async () => {
      const proxy = await startProxy(target.host, { bytesPerSecond: 8 << 20 })
      let killedAt = 0
      try {
        const { args, input } = access(proxy.host)
        const killed = await runCli(
          ['push', bundlePath, '--registry', proxy.host, '--prefix', 'resume', '-j', '2', '--json', ...args],
          {
            input,
            onStdoutLine: (line, kill) => {
              if (killedAt || !line.startsWith('{')) return
              const event = JSON.parse(line)
              if (
                event.type === 'task.progress' &&
                event.unit === 'bytes' &&
                event.total > 0 &&
                event.done >= event.total / 2
              ) {
                killedAt = event.done
                kill()
              }
            },
          },
        )
        expect(killedAt).toBeGreaterThan(0)
        expect(killed.code).toBe(137)
        // Through the same address: the upload sessions the killed run kept are asked where they stand.
        const rerun = await push({ host: proxy.host, prefix: 'resume' })
        expect(rerun.error).toBeUndefined()
        expect(rerun.code).toBe(0)
        expect(rerun.result.bytesUploaded).toBeLessThan(firstPush.bytes!)
        expect(rerun.result.blobsSkipped + rerun.result.upToDate).toBeGreaterThan(0)
        const continued = rerun.events.filter(
          (e) =>
            e.code === 'I_UPLOAD_RESUMED' && String(e.message).includes('where an interrupted run left it'),
        )
        // distribution 3 keeps what arrived before the kill: the large blob goes on from there. 2.8 (Harbor's) refuses a
        // session whose last request broke off, so there the blob starts again in a new session.
        if (flavor === 'distribution-v3') expect(continued.length).toBeGreaterThan(0)
        else expect(continued).toEqual([])
      } finally {
        await proxy.stop()
      }
      await expectAllReadable('resume')
    })
  })

  describe('into distribution-v3 behind a token service, as Harbor', () => {
    let issuer: TokenIssuer
    let target: TestRegistry

    beforeAll(async () => {
      issuer = await startTokenIssuer({ users: { site: 'harbor-pass' } })
      target = await startRegistry({
        flavor: 'distribution-v3',
        extraConfig: { auth: issuer.registryAuthConfig() },
      })
    })
    afterAll(async () => {
      await target?.stop()
      await issuer?.stop()
    })

    it('pushes with bearer tokens, mounting shared layers with a token for both repositories', async () => {
      const push = () =>
        runCli(
          [
            'push',
            bundlePath,
            '--registry',
            target.host,
            '--prefix',
            PREFIX,
            '--insecure-registry',
            target.host,
            '--username',
            'site',
            '--password-stdin',
            '--json',
          ],
          { input: 'harbor-pass\n' },
        )
      const first = await push()
      expect(first.error).toBeUndefined()
      expect(first.result).toMatchObject({ images: 6, charts: 1, upToDate: 0 })
      expect(first.result.blobsMounted).toBeGreaterThanOrEqual(3)
      // A mount asks for push on the target and pull on the source, in one token.
      const mountTokens = issuer.requests.filter(
        (r) => r.status === 200 && r.scopes.length === 2 && r.scopes.some((s) => s.endsWith(':pull,push')),
      )
      expect(mountTokens.length).toBeGreaterThanOrEqual(first.result.blobsMounted)
      expect(issuer.requests.every((r) => r.account === 'site')).toBe(true)
      for (const artifact of artifacts) {
        const raw = (
          await run(
            findTool('skopeo'),
            [
              'inspect',
              '--raw',
              '--tls-verify=false',
              '--creds',
              'site:harbor-pass',
              `docker://${target.host}/${artifact.path}`,
            ],
            { encoding: 'buffer', maxBuffer: 1 << 24 },
          )
        ).stdout as Buffer
        expect(sha256(raw), artifact.path).toBe(artifact.digest)
      }
      const second = await push()
      expect(second.result).toMatchObject({ upToDate: 7, bytesUploaded: 0, manifestsPushed: 0 })
    })
  })
})

interface TcpProxy {
  host: string
  cuts: number
  stop(): Promise<void>
}

/**
 * A TCP proxy on loopback in front of a registry (TLS passes through untouched): it can throttle what clients send,
 * and cut one connection once it has carried `cutAfterBytes` upstream, as a flaky network or a restarted load
 * balancer would.
 */
async function startProxy(
  target: string,
  options: { bytesPerSecond?: number; cutAfterBytes?: number },
): Promise<TcpProxy> {
  const [targetHost, targetPort] = target.split(':') as [string, string]
  const sockets = new Set<Socket>()
  const proxy: TcpProxy = { host: '', cuts: 0, stop: async () => {} }
  const server: Server = createServer((client) => {
    const upstream = connect(Number(targetPort), targetHost)
    sockets.add(client)
    sockets.add(upstream)
    let sent = 0
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close)
    upstream.on('error', close)
    client.on('close', () => {
      sockets.delete(client)
      upstream.end()
    })
    upstream.on('close', () => {
      sockets.delete(upstream)
      client.destroy()
    })
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length
      if (options.cutAfterBytes && proxy.cuts === 0 && sent > options.cutAfterBytes) {
        proxy.cuts += 1
        close()
        return
      }
      upstream.write(chunk)
      if (options.bytesPerSecond) {
        client.pause()
        setTimeout(() => client.resume(), (1000 * chunk.length) / options.bytesPerSecond)
      }
    })
    upstream.on('data', (chunk: Buffer) => client.write(chunk))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  proxy.host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  proxy.stop = async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return proxy
}
