import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../support/cli.js'
import { startCountingProxy } from '../../support/counting-proxy.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { startTokenIssuer, type TokenIssuer } from '../../support/token-issuer.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const CHUNK = 8 << 20

/**
 * `publish` and `pull` against real registries: a bundle made by the real CLI (a 40 MiB file, so it spans several
 * 8 MiB chunks) goes to Debian's distribution 2.8 behind htpasswd and TLS, to distribution v3 over plain HTTP, and to
 * distribution v3 behind a token service as Harbor runs it; it comes back byte for byte with `pull` and with oras.
 * Interruptions are real: the built CLI is killed with SIGKILL mid-transfer behind a throttling, byte-counting proxy.
 */
describe('publish and pull', () => {
  let work: string
  let files: FileServer
  let bundlePath: string
  let bundleBytes: Buffer
  let cache: string

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-publish-it-'))
    cache = join(work, 'cache')
    mkdirSync(join(work, 'site'), { recursive: true })
    const payload = randomBytes(40 << 20)
    writeFileSync(join(work, 'site', 'payload.bin'), payload)
    files = await startFileServer(join(work, 'site'))
    const definition = join(work, 'release.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'release', version: '1.0.0', description: 'A release to publish' },
        files: [
          {
            url: 'https://downloads.example.org/payload.bin',
            sha256: sha256(payload).slice(7),
            path: 'payload.bin',
          },
        ],
      }),
    )
    const res = await runCli([
      'bundle',
      definition,
      '--output-dir',
      join(work, 'out'),
      '--json',
      // The chunk sizes below are chosen for the payload: the installer (about 90 MiB, there when
      // scripts/build-installer ran) would change how many chunks the file has.
      '--no-installer',
      '--mirror',
      `https://downloads.example.org=${files.url}`,
    ])
    expect(res.error).toBeUndefined()
    bundlePath = res.result.path
    bundleBytes = readFileSync(bundlePath)
    expect(bundleBytes.length).toBeGreaterThan(4 * CHUNK)
  })

  afterAll(async () => {
    await files?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  const env = () => ({ XDG_CACHE_HOME: cache })
  const chunkCount = () => Math.ceil(bundleBytes.length / CHUNK)

  describe.each(['distribution-v2', 'distribution-v3'] as const)('with %s', (flavor) => {
    const secure = flavor === 'distribution-v2'
    let registry: TestRegistry

    beforeAll(async () => {
      registry = await startRegistry({
        flavor,
        ...(secure ? { tls: true, credentials: { username: 'release', password: 'release-pass' } } : {}),
        extraConfig: { log: { level: 'info', accesslog: { disabled: false } } },
      })
    })
    afterAll(async () => {
      await registry?.stop()
    })

    const access = (host = registry.host, password = 'release-pass') =>
      secure
        ? {
            args: ['--ca-file', registry.tls!.caFile, '--username', `${host}=release`, '--password-stdin'],
            input: `${password}\n`,
          }
        : { args: ['--insecure-registry', host], input: '' }

    const publish = (ref: string, options: { host?: string; password?: string; extra?: string[] } = {}) => {
      const host = options.host ?? registry.host
      const { args, input } = access(host, options.password)
      return runCli(
        [
          'publish',
          bundlePath,
          `oci://${host}/${ref}`,
          '--chunk-size',
          '8M',
          '--json',
          ...args,
          ...(options.extra ?? []),
        ],
        { input, env: env() },
      )
    }
    const pull = (ref: string, outputDir: string, options: { host?: string; extra?: string[] } = {}) => {
      const host = options.host ?? registry.host
      const { args, input } = access(host)
      return runCli(
        [
          'pull',
          `oci://${host}/${ref}`,
          '--output-dir',
          outputDir,
          '--json',
          ...args,
          ...(options.extra ?? []),
        ],
        {
          input,
          env: env(),
        },
      )
    }
    const orasAccess = () =>
      secure
        ? ['--ca-file', registry.tls!.caFile, '--username', 'release', '--password', 'release-pass']
        : ['--plain-http']
    const uploadRequests = () =>
      readFileSync(join(registry.workDir, 'registry.log'), 'utf8')
        .split('\n')
        .filter((line) => /"(PUT|PATCH|POST) \/v2\/[^"]*\/blobs\/uploads/.test(line)).length

    it('publishes the bundle in chunks, and pull gets the identical file back', async () => {
      const res = await publish('releases/release:1.0.0')
      expect(res.error).toBeUndefined()
      expect(res.code).toBe(0)
      expect(res.result).toMatchObject({
        reference: `oci://${registry.host}/releases/release:1.0.0`,
        name: 'release',
        version: '1.0.0',
        status: 'published',
        bundleDigest: sha256(bundleBytes),
        size: bundleBytes.length,
        chunks: chunkCount(),
        blobsUploaded: chunkCount() + 1,
        blobsSkipped: 0,
      })
      expect(res.result.bytesUploaded).toBeGreaterThan(bundleBytes.length)

      const out = join(work, `pull-${flavor}`)
      const pulled = await pull('releases/release:1.0.0', out)
      expect(pulled.error).toBeUndefined()
      expect(pulled.result).toMatchObject({
        status: 'pulled',
        digest: res.result.digest,
        chunksDownloaded: chunkCount(),
      })
      expect(pulled.result.path).toBe(join(out, 'release-1.0.0.tar'))
      expect(sha256(readFileSync(pulled.result.path))).toBe(sha256(bundleBytes))
      expect(readdirSync(out)).toEqual(['release-1.0.0.tar'])
      const verified = await runCli(['verify', pulled.result.path, '--json'])
      expect(verified.code, verified.stderr).toBe(0)

      // By digest, as split volumes.
      const split = join(work, `split-${flavor}`)
      const volumes = await pull(`releases/release@${res.result.digest}`, split, {
        extra: ['--split-size', '16M'],
      })
      expect(volumes.error).toBeUndefined()
      expect(volumes.result.paths.length).toBe(Math.ceil(bundleBytes.length / (16 << 20)))
      expect(volumes.result.path).toBe(join(split, 'release-1.0.0.tar.000'))
      const joined = Buffer.concat(volumes.result.paths.map((p: string) => readFileSync(p)))
      expect(joined.equals(bundleBytes)).toBe(true)

      // A second pull into the same folder checks the file and downloads nothing.
      const again = await pull('releases/release:1.0.0', out)
      expect(again.result).toMatchObject({ status: 'present', bytesDownloaded: 0 })

      // The split volumes are the same bundle: publishing them finds it already there, under the same file name.
      const fromVolumes = await runCli(
        [
          'publish',
          volumes.result.path,
          `oci://${registry.host}/releases/release:1.0.0`,
          '--chunk-size',
          '8M',
          '--json',
          ...access().args,
        ],
        { input: access().input, env: env() },
      )
      expect(fromVolumes.error).toBeUndefined()
      expect(fromVolumes.result).toMatchObject({
        status: 'present',
        digest: res.result.digest,
        bytesUploaded: 0,
      })
    })

    it('a second publish sends no blob', async () => {
      const before = uploadRequests()
      expect(before).toBeGreaterThan(0)
      const res = await publish('releases/release:1.0.0')
      expect(res.error).toBeUndefined()
      expect(res.result).toMatchObject({ status: 'present', blobsUploaded: 0, bytesUploaded: 0 })
      // Another tag of the same bundle: every blob is there (HEAD), only the manifest is written.
      const other = await publish('releases/release:stable')
      expect(other.result).toMatchObject({ status: 'published', blobsUploaded: 0, bytesUploaded: 0 })
      expect(other.result.blobsSkipped).toBe(chunkCount() + 1)
      expect(uploadRequests()).toBe(before)
    })

    it('oras lists the tag and fetches the same bytes', async () => {
      const oras = findTool('oras')
      const tags = await run(oras, ['repo', 'tags', ...orasAccess(), `${registry.host}/releases/release`])
      expect(tags.stdout.split('\n')).toEqual(expect.arrayContaining(['1.0.0', 'stable']))
      const fetched = await run(oras, [
        'manifest',
        'fetch',
        ...orasAccess(),
        `${registry.host}/releases/release:1.0.0`,
      ])
      const manifest = JSON.parse(fetched.stdout)
      expect(manifest.artifactType).toBe('application/vnd.astrago.airgap.bundle.v1')
      expect(manifest.annotations['io.astrago.airgap.bundle.digest']).toBe(sha256(bundleBytes))
      expect(manifest.annotations['org.opencontainers.image.version']).toBe('1.0.0')
      const out = join(work, `oras-${flavor}`)
      await run(oras, ['pull', ...orasAccess(), '-o', out, `${registry.host}/releases/release:1.0.0`])
      const names = readdirSync(out).sort()
      expect(names.length).toBe(chunkCount())
      expect(names[0]).toBe('release-1.0.0.tar.000')
      const joined = Buffer.concat(names.map((n) => readFileSync(join(out, n))))
      expect(joined.equals(bundleBytes)).toBe(true)
      // What oras wrote are split volumes astrago-airgap reads directly.
      const verified = await runCli(['verify', join(out, names[0]!), '--json'])
      expect(verified.code, verified.stderr).toBe(0)
    })

    if (secure) {
      it('refuses a wrong password with E_AUTH, naming the registry', async () => {
        const res = await publish('releases/other:1.0.0', { password: 'wrong' })
        expect(res.code).toBe(5)
        expect(res.error?.code).toBe('E_AUTH')
        expect(res.error?.message).toContain(registry.host)
      })
    }

    it('after kill -9 mid-upload, a rerun sends only what is missing', async () => {
      const proxy = await startCountingProxy(registry.host, { bytesPerSecond: 6 << 20 })
      let killedAt = 0
      let uploadTask: string | undefined
      try {
        const { args, input } = access(proxy.host)
        const killed = await runCli(
          [
            'publish',
            bundlePath,
            `oci://${proxy.host}/releases/resume:1.0.0`,
            '--chunk-size',
            '8M',
            '-j',
            '1',
            '--json',
            ...args,
          ],
          {
            input,
            env: env(),
            onStdoutLine: (line, kill) => {
              if (killedAt || !line.startsWith('{')) return
              const event = JSON.parse(line)
              if (event.type === 'task.start' && event.kind === 'publish.upload') uploadTask = event.id
              if (
                event.type === 'task.progress' &&
                event.id === uploadTask &&
                event.total > 4 * CHUNK &&
                event.done >= event.total / 2
              ) {
                killedAt = event.done
                kill()
              }
            },
          },
        )
        expect(killed.code).toBe(137)
        expect(killedAt).toBeGreaterThan(0)
        const sentBefore = proxy.upstreamBytes
        const rerun = await publish('releases/resume:1.0.0', { host: proxy.host })
        expect(rerun.error).toBeUndefined()
        expect(rerun.result.status).toBe('published')
        expect(rerun.result.blobsSkipped).toBeGreaterThan(0)
        expect(rerun.result.bytesUploaded).toBeLessThan(bundleBytes.length / 2 + CHUNK)
        // Counted on the wire: the rerun carried far less than the bundle.
        expect(proxy.upstreamBytes - sentBefore).toBeLessThan(bundleBytes.length / 2 + 2 * CHUNK)
      } finally {
        await proxy.stop()
      }
      const out = join(work, `resume-${flavor}`)
      const pulled = await pull('releases/resume:1.0.0', out)
      expect(pulled.error).toBeUndefined()
      expect(sha256(readFileSync(pulled.result.path))).toBe(sha256(bundleBytes))
    })

    if (!secure) {
      // distribution 3 keeps the bytes of an upload session that broke off (2.8, which Harbor embeds, refuses such a
      // session, and the blob starts over: see push.test.ts).
      it('after kill -9 inside one large chunk, a rerun continues its upload session', async () => {
        const proxy = await startCountingProxy(registry.host, { bytesPerSecond: 6 << 20 })
        let killedAt = 0
        let uploadTask: string | undefined
        try {
          const ref = `oci://${proxy.host}/releases/session:1.0.0`
          const args = ['--chunk-size', '64M', '--insecure-registry', proxy.host, '--json']
          const killed = await runCli(['publish', bundlePath, ref, ...args], {
            env: env(),
            onStdoutLine: (line, kill) => {
              if (killedAt || !line.startsWith('{')) return
              const event = JSON.parse(line)
              if (event.type === 'task.start' && event.kind === 'publish.upload') uploadTask = event.id
              if (
                event.type === 'task.progress' &&
                event.id === uploadTask &&
                event.done >= event.total / 2
              ) {
                killedAt = event.done
                kill()
              }
            },
          })
          expect(killed.code).toBe(137)
          // What the killed run had sent was still on its way (socket buffers, here several MiB): the registry keeps
          // receiving it, slowly, while the rerun asks where the session stands.
          proxy.slowOpenConnections(1 << 20)
          const rerun = await runCli(['publish', bundlePath, ref, ...args], { env: env() })
          expect(rerun.error).toBeUndefined()
          expect(rerun.events.filter((e) => e.code === 'W_UPLOAD_RESTARTED')).toEqual([])
          expect(rerun.result.chunks).toBe(1)
          expect(rerun.result.bytesUploaded).toBeLessThan(bundleBytes.length - killedAt / 2)
          const continued = rerun.events.filter(
            (e) =>
              e.code === 'I_UPLOAD_RESUMED' && String(e.message).includes('where an interrupted run left it'),
          )
          expect(continued.length).toBe(1)
        } finally {
          await proxy.stop()
        }
        const pulled = await pull('releases/session:1.0.0', join(work, 'session'))
        expect(sha256(readFileSync(pulled.result.path))).toBe(sha256(bundleBytes))
      })
    }

    it('after kill -9 mid-download, a rerun continues from the partial file', async () => {
      const proxy = await startCountingProxy(registry.host, { downstreamBytesPerSecond: 4 << 20 })
      const out = join(work, `pull-resume-${flavor}`)
      let killedAt = 0
      let downloadTask: string | undefined
      try {
        const { args, input } = access(proxy.host)
        const killed = await runCli(
          [
            'pull',
            `oci://${proxy.host}/releases/release:1.0.0`,
            '--output-dir',
            out,
            '-j',
            '2',
            '--json',
            ...args,
          ],
          {
            input,
            env: env(),
            onStdoutLine: (line, kill) => {
              if (killedAt || !line.startsWith('{')) return
              const event = JSON.parse(line)
              if (event.type === 'task.start' && event.kind === 'pull.download') downloadTask = event.id
              if (
                event.type === 'task.progress' &&
                event.id === downloadTask &&
                event.total === bundleBytes.length &&
                event.done >= event.total / 2
              ) {
                killedAt = event.done
                kill()
              }
            },
          },
        )
        expect(killed.code).toBe(137)
        expect(killedAt).toBeGreaterThan(0)
        // Nothing under the final name until the whole file is checked.
        expect(existsSync(join(out, 'release-1.0.0.tar'))).toBe(false)
        expect(existsSync(join(out, 'release-1.0.0.tar.partial'))).toBe(true)
        // What the killed run recorded as on disk (its journal lags the download a little, never leads it).
        const journal = JSON.parse(readFileSync(join(out, 'release-1.0.0.tar.pull.json'), 'utf8')) as {
          done: number[]
          partial: Record<string, number>
        }
        const sizes = Array.from({ length: chunkCount() }, (_, i) =>
          Math.min(CHUNK, bundleBytes.length - i * CHUNK),
        )
        const missing = sizes.reduce(
          (sum, size, i) => (journal.done.includes(i) ? sum : sum + size - (journal.partial[String(i)] ?? 0)),
          0,
        )
        expect(missing).toBeLessThan(bundleBytes.length - (4 << 20))
        const receivedBefore = proxy.downstreamBytes
        const rerun = await pull('releases/release:1.0.0', out, { host: proxy.host })
        expect(rerun.error).toBeUndefined()
        expect(rerun.result.status).toBe('pulled')
        // Exactly the bytes the journal lacked, asked for with Range requests where a chunk had begun.
        expect(rerun.result.bytesDownloaded).toBe(missing)
        expect(rerun.result.chunksDownloaded).toBe(chunkCount() - journal.done.length)
        expect(rerun.result.chunksResumed).toBe(Object.values(journal.partial).filter((n) => n > 0).length)
        expect(proxy.downstreamBytes - receivedBefore).toBeLessThan(missing + (1 << 20))
        expect(readdirSync(out)).toEqual(['release-1.0.0.tar'])
        expect(sha256(readFileSync(join(out, 'release-1.0.0.tar')))).toBe(sha256(bundleBytes))
      } finally {
        await proxy.stop()
      }
    })
  })

  describe('with distribution-v3 behind a token service, as Harbor', () => {
    let issuer: TokenIssuer
    let registry: TestRegistry

    beforeAll(async () => {
      issuer = await startTokenIssuer({ users: { release: 'release-pass' } })
      registry = await startRegistry({
        flavor: 'distribution-v3',
        extraConfig: { auth: issuer.registryAuthConfig() },
      })
    })
    afterAll(async () => {
      await registry?.stop()
      await issuer?.stop()
    })

    it('publishes and pulls with bearer tokens', async () => {
      const login = [
        '--insecure-registry',
        registry.host,
        '--username',
        'release',
        '--password-stdin',
        '--json',
      ]
      const published = await runCli(
        ['publish', bundlePath, `oci://${registry.host}/releases/release`, '--chunk-size', '16M', ...login],
        { input: 'release-pass\n', env: env() },
      )
      expect(published.error).toBeUndefined()
      // Without a tag, the bundle's version is the tag.
      expect(published.result.reference).toBe(`oci://${registry.host}/releases/release:1.0.0`)
      expect(
        issuer.requests.some(
          (r) => r.account === 'release' && r.granted.some((g) => g.endsWith(':pull,push')),
        ),
      ).toBe(true)
      const out = join(work, 'pull-token')
      const pulled = await runCli(
        ['pull', `oci://${registry.host}/releases/release:1.0.0`, '--output-dir', out, ...login],
        {
          input: 'release-pass\n',
          env: env(),
        },
      )
      expect(pulled.error).toBeUndefined()
      expect(sha256(readFileSync(pulled.result.path))).toBe(sha256(bundleBytes))
      const anonymous = await runCli(
        [
          'pull',
          `oci://${registry.host}/releases/release:1.0.0`,
          '--output-dir',
          join(work, 'anon'),
          '--insecure-registry',
          registry.host,
          '--json',
        ],
        { env: env() },
      )
      expect(anonymous.code).toBe(5)
      expect(anonymous.error?.code).toBe('E_AUTH')
    })
  })

  it('refuses what is not a published bundle, and a reference without oci://', async () => {
    const registry = await startRegistry()
    try {
      const plain = await runCli(['pull', `${registry.host}/x:1`, '--output-dir', join(work, 'x'), '--json'])
      expect(plain.code).toBe(2)
      expect(plain.error?.code).toBe('E_USAGE')
      // An ordinary OCI artifact pushed by oras.
      const note = join(work, 'note.txt')
      writeFileSync(note, 'not a bundle')
      await run(
        findTool('oras'),
        ['push', '--plain-http', `${registry.host}/notes/note:1`, 'note.txt:text/plain'],
        { cwd: work },
      )
      const other = await runCli([
        'pull',
        `oci://${registry.host}/notes/note:1`,
        '--output-dir',
        join(work, 'x'),
        '--insecure-registry',
        registry.host,
        '--json',
      ])
      expect(other.code).toBe(3)
      expect(other.error?.code).toBe('E_INPUT')
      expect(other.error?.message).toContain('not an astrago-airgap bundle')
    } finally {
      await registry.stop()
    }
  })
})
