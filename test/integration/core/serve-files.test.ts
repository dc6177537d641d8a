import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createServer, request, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFromDefinition } from '../../../src/bundle/bundle-from-definition.js'
import type { BundleMetadata } from '../../../src/bundle/metadata.js'
import { BundleReader } from '../../../src/bundle/reader.js'
import { silentSink } from '../../../src/events/types.js'
import { createFileHandler, type RequestHandler } from '../../../src/serve/file-handler.js'
import {
  createNodeSetupFiles,
  type NodeSetupFiles,
  upstreamRegistries,
} from '../../../src/serve/node-setup.js'
import { issueServerCertificate, loadOrCreateSiteCa, type SiteCa } from '../../../src/serve/site-ca.js'
import { createChart, helm } from '../../support/charts.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pushImage } from '../../support/images.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const SENTINEL = 'TOP-SECRET-SENTINEL-next-to-the-bundle'

interface Reply {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/**
 * The site file server over real HTTPS: a real bundle (images from a distribution registry, a chart rendered by the
 * real helm, files from a download site), a site CA and server certificate made by our code, the handler on
 * node:https on 127.0.0.1, and the real clients a site uses: Debian's curl, helm, and sh running node-setup.sh.
 */
describe('site file server', () => {
  let work: string
  let registry: TestRegistry
  let upstream: FileServer
  let reader: BundleReader
  let metadata: BundleMetadata
  let server: Server
  let siteUrl: string
  let port: number
  let ca: SiteCa
  let caFile: string
  let nodeSetup: NodeSetupFiles
  let tool: Buffer
  const streamErrors: unknown[] = []

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-serve-files-'))
    registry = await startRegistry({ flavor: 'distribution-v3' })
    await pushImage(registry, {
      repository: 'docker.io/library/app',
      tag: '1.0',
      layers: [{ seed: 'app', size: 30_000 }],
    })
    await pushImage(registry, {
      repository: 'nvcr.io/nvidia/cuda',
      tag: '12.8',
      format: 'docker',
      layers: [{ seed: 'cuda', size: 30_000 }],
    })
    await pushImage(registry, {
      repository: 'quay.io/demo/worker',
      tag: '2.0',
      layers: [{ seed: 'worker', size: 30_000 }],
    })

    const site = join(work, 'upstream')
    mkdirSync(join(site, 'charts', 'stable'), { recursive: true })
    mkdirSync(join(site, 'downloads'), { recursive: true })
    await createChart(join(site, 'charts', 'stable'), {
      name: 'worker',
      version: '0.1.0',
      images: ['quay.io/demo/worker:2.0'],
    })
    rmSync(join(site, 'charts', 'stable', 'worker'), { recursive: true })
    await run(findTool('helm'), ['repo', 'index', join(site, 'charts', 'stable')])
    tool = randomBytes(1_500_000)
    writeFileSync(join(site, 'downloads', 'tool.bin'), tool)
    const dashboard = Buffer.from(JSON.stringify({ title: 'GPU', panels: [] }))
    writeFileSync(join(site, 'downloads', 'gpu.json'), dashboard)
    upstream = await startFileServer(site)

    const definition = join(work, 'site.json')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'serve-it', version: '1.0.0' },
        platforms: ['linux/amd64'],
        images: ['docker.io/library/app:1.0', 'nvcr.io/nvidia/cuda:12.8'],
        charts: [{ name: 'worker', version: '0.1.0', repo: 'https://charts.example.org/stable' }],
        files: [
          { url: 'https://downloads.example.org/tool.bin', sha256: sha256(tool), path: 'bin/tool.bin' },
          {
            url: 'https://downloads.example.org/gpu.json',
            sha256: sha256(dashboard),
            path: 'dashboards/gpu.json',
          },
        ],
      }),
    )
    const out = join(work, 'out')
    const bundle = await bundleFromDefinition({
      definition,
      outputDir: out,
      mirrors: {
        'docker.io': `${registry.url}/docker.io`,
        'nvcr.io': `${registry.url}/nvcr.io`,
        'quay.io': `${registry.url}/quay.io`,
        'https://charts.example.org': `${upstream.url}/charts`,
        'https://downloads.example.org': `${upstream.url}/downloads`,
      },
      helm: findTool('helm'),
      toolVersion: 'test',
      sink: silentSink,
    })
    // Files the server must never give away: one next to the bundle, and the bundle's own bundle.json.
    writeFileSync(join(out, 'secret.txt'), SENTINEL)
    reader = await BundleReader.open(bundle.path)
    metadata = reader.metadata

    ca = await loadOrCreateSiteCa(join(work, 'state'))
    const certificate = await issueServerCertificate(ca, { hosts: ['127.0.0.1', 'localhost'] })
    caFile = join(work, 'ca.crt')
    writeFileSync(caFile, ca.certPem)
    let handler: RequestHandler | undefined
    server = createServer({ cert: certificate.certPem, key: certificate.keyPem }, (req, res) => {
      handler!(req, res).then(
        (handled) => {
          if (!handled) {
            res.statusCode = 418
            res.end('not the file server\n')
          }
        },
        (error) => {
          res.statusCode = 500
          res.end(String(error))
        },
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as { port: number }).port
    siteUrl = `https://127.0.0.1:${port}`
    nodeSetup = createNodeSetupFiles({
      siteUrl,
      caPem: ca.certPem,
      upstreams: upstreamRegistries(metadata),
      bundle: { name: metadata.name, version: metadata.version },
    })
    handler = createFileHandler({
      reader,
      caPem: ca.certPem,
      nodeSetup,
      onError: (error) => streamErrors.push(error),
    })
  })

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    await reader?.close()
    await upstream?.stop()
    await registry?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  /** The real curl, trusting only the site CA. */
  async function curl(path: string, args: string[] = []): Promise<Reply> {
    const bodyFile = join(work, `body-${randomBytes(4).toString('hex')}`)
    const { stdout } = await run(findTool('curl'), [
      '-sS',
      '--cacert',
      caFile,
      '-D',
      '-',
      '-o',
      bodyFile,
      ...args,
      `${siteUrl}${path}`,
    ])
    const blocks = stdout.trim().split(/\r?\n\r?\n/)
    const lines = blocks[blocks.length - 1]!.split(/\r?\n/)
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0]!)![1])
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    const body = existsSync(bodyFile) ? readFileSync(bodyFile) : Buffer.alloc(0)
    rmSync(bodyFile, { force: true })
    return { status, headers, body }
  }

  /** A raw HTTPS request whose path goes on the wire exactly as written (no client-side normalization). */
  function raw(path: string, method = 'GET'): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method, ca: ca.certPem }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers as Record<string, string>,
            body: Buffer.concat(chunks),
          }),
        )
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end()
    })
  }

  it('serves a bundle file to curl with the sha256 of the bundle as content and ETag', async () => {
    const locked = metadata.files.find((f) => f.path === 'files/bin/tool.bin')!
    const reply = await curl('/files/bin/tool.bin')
    expect(reply.status).toBe(200)
    expect(sha256(reply.body)).toBe(locked.sha256)
    expect(sha256(reply.body)).toBe(sha256(tool))
    expect(reply.headers.etag).toBe(`"${locked.sha256}"`)
    expect(reply.headers['content-length']).toBe(String(tool.length))
    expect(reply.headers['content-type']).toBe('application/octet-stream')
    expect(reply.headers['accept-ranges']).toBe('bytes')

    const json = await curl('/files/dashboards/gpu.json')
    expect(json.status).toBe(200)
    expect(json.headers['content-type']).toBe('application/json')
    expect(JSON.parse(json.body.toString())).toEqual({ title: 'GPU', panels: [] })

    const head = await raw('/files/bin/tool.bin', 'HEAD')
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(tool.length))
    expect(head.headers.etag).toBe(`"${locked.sha256}"`)
    expect(head.body.length).toBe(0)
    expect(streamErrors).toEqual([])
  })

  it('answers Range requests with the right slice (206) and unsatisfiable ones with 416', async () => {
    const size = tool.length
    const middle = await curl('/files/bin/tool.bin', ['-r', '1000-1999'])
    expect(middle.status).toBe(206)
    expect(middle.headers['content-range']).toBe(`bytes 1000-1999/${size}`)
    expect(middle.headers['content-length']).toBe('1000')
    expect(middle.body.equals(tool.subarray(1000, 2000))).toBe(true)

    // across the 256 KiB read chunks, and open-ended to the end
    const tail = await curl('/files/bin/tool.bin', ['-r', `${(256 << 10) - 7}-`])
    expect(tail.status).toBe(206)
    expect(tail.body.equals(tool.subarray((256 << 10) - 7))).toBe(true)

    const suffix = await curl('/files/bin/tool.bin', ['-r', '-100'])
    expect(suffix.status).toBe(206)
    expect(suffix.headers['content-range']).toBe(`bytes ${size - 100}-${size - 1}/${size}`)
    expect(suffix.body.equals(tool.subarray(size - 100))).toBe(true)

    const beyond = await curl('/files/bin/tool.bin', ['-r', `${size}-`])
    expect(beyond.status).toBe(416)
    expect(beyond.headers['content-range']).toBe(`bytes */${size}`)

    // an inverted range is refused as the registry refuses it (net/http-range.ts); it used to send the whole file
    const inverted = await curl('/files/bin/tool.bin', ['-r', '2000-1000'])
    expect(inverted.status).toBe(416)
    expect(inverted.headers['content-range']).toBe(`bytes */${size}`)
    expect(inverted.body.toString()).toBe('range not satisfiable\n')

    // a resumed download: If-Range with the current ETag honours the range, a stale one gets the whole file
    const etag = `"${sha256(tool)}"`
    const resumed = await curl('/files/bin/tool.bin', ['-r', '10-19', '-H', `If-Range: ${etag}`])
    expect(resumed.status).toBe(206)
    const stale = await curl('/files/bin/tool.bin', ['-r', '10-19', '-H', `If-Range: "${'0'.repeat(64)}"`])
    expect(stale.status).toBe(200)
    expect(stale.body.length).toBe(size)
    const cached = await curl('/files/bin/tool.bin', ['-H', `If-None-Match: ${etag}`])
    expect(cached.status).toBe(304)
    expect(cached.body.length).toBe(0)
  })

  it('is a Helm chart repository: helm repo add and helm pull work with the site CA', async () => {
    const index = await curl('/charts/index.yaml')
    expect(index.status).toBe(200)
    expect(index.headers['content-type']).toBe('application/yaml')
    expect(index.body.toString()).toMatch(/worker-0\.1\.0\.tgz/)

    const home = join(work, 'helm-home')
    await helm(['repo', 'add', 'site', `${siteUrl}/charts`, '--ca-file', caFile], { home })
    const search = await helm(['search', 'repo', 'site/worker', '--output', 'json'], { home })
    expect(JSON.parse(search.stdout)).toEqual([
      expect.objectContaining({ name: 'site/worker', version: '0.1.0' }),
    ])
    const pulled = join(work, 'pulled')
    mkdirSync(pulled)
    await helm(['pull', 'site/worker', '--version', '0.1.0', '--destination', pulled, '--ca-file', caFile], {
      home,
    })
    const chart = metadata.charts.find((c) => c.name === 'worker')!
    expect(sha256(readFileSync(join(pulled, 'worker-0.1.0.tgz')))).toBe(chart.sha256)
    const direct = await curl('/charts/worker-0.1.0.tgz')
    expect(direct.headers['content-type']).toBe('application/gzip')
    expect(direct.headers.etag).toBe(`"${chart.sha256}"`)
  })

  it('refuses path traversal before any lookup and never serves anything outside the bundle routes', async () => {
    const refused = [
      '/files/../bundle.json',
      '/files/%2e%2e/bundle.json',
      '/files/%2E%2E%2Fbundle.json',
      '/files/bin/..%2f..%2fbundle.json',
      '/files/../secret.txt',
      '/files/../../../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '//etc/passwd',
      '/files//etc/passwd',
      '/files/%2Fetc%2Fpasswd',
      '/files/..%5c..%5cbundle.json',
      '/files/bin%5ctool.bin',
      '/files/tool%00.bin',
      '/files/./bin/tool.bin',
      '/files/%E0%A4%A',
    ]
    for (const path of refused) {
      const reply = await raw(path)
      expect({ path, status: reply.status }).toEqual({ path, status: 400 })
      expect(reply.body.toString()).toMatch(/^bad request/)
    }
    const missing = [
      '/files/%252e%252e/bundle.json', // decoded once: a literal "%2e%2e" member name, which does not exist
      '/files/secret.txt',
      '/secret.txt',
      '/bundle.json',
      '/oci/index.json',
      '/files/',
      '/charts/',
      '/repo/',
      '/files/bin',
      '/etc/passwd',
    ]
    for (const path of missing) {
      const reply = await raw(path)
      expect({ path, status: reply.status }).toEqual({ path, status: 404 })
      expect(reply.body.toString()).toBe('not found\n')
    }
    // curl sending the dots as they are
    const asIs = await curl('/files/../bundle.json', ['--path-as-is'])
    expect(asIs.status).toBe(400)
    for (const reply of [asIs, ...(await Promise.all([...refused, ...missing].map((p) => raw(p))))]) {
      const text = reply.body.toString()
      expect(text).not.toContain(SENTINEL)
      expect(text).not.toContain('root:x:0:0')
      expect(text).not.toContain('astrago-airgap.bundle/v1')
    }
  })

  it('leaves /v2/ to the registry, is read-only, and lists only /node-setup/', async () => {
    expect((await raw('/v2/')).status).toBe(418)
    expect((await raw('/v2/docker.io/library/app/manifests/1.0?ns=docker.io')).status).toBe(418)
    const post = await raw('/files/bin/tool.bin', 'POST')
    expect(post.status).toBe(405)
    expect(post.headers.allow).toBe('GET, HEAD')
    expect((await raw('/files/bin/tool.bin', 'DELETE')).status).toBe(405)

    const listing = await curl('/node-setup/')
    expect(listing.status).toBe(200)
    expect(listing.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(listing.body.toString().trim().split('\n')).toEqual([...nodeSetup.keys()].sort())
    expect(listing.body.toString()).toMatch(/hosts\/nvcr\.io\/hosts\.toml/)

    const caReply = await curl('/ca.crt')
    expect(caReply.body.toString()).toBe(ca.certPem)
    expect(caReply.headers['content-type']).toBe('application/x-pem-file')
    const toml = await curl('/node-setup/hosts/docker.io/hosts.toml')
    expect(toml.body.toString()).toBe(nodeSetup.get('hosts/docker.io/hosts.toml'))
    const script = await curl('/node-setup/node-setup.sh')
    expect(script.headers['content-type']).toBe('text/x-shellscript; charset=utf-8')
    expect(script.headers.etag).toBe(`"${sha256(nodeSetup.get('node-setup.sh')!)}"`)
  })

  // ---- node-setup.sh, run for real by sh under a temporary root -------------------------------------------------

  const CONTAINERD_2_DEFAULT = `version = 3
root = '/var/lib/containerd'
state = '/run/containerd'

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10'

    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ''

  [plugins.'io.containerd.transfer.v1.local']
    max_concurrent_downloads = 3
    config_path = ''
`

  interface ScriptRun {
    code: number
    stdout: string
    stderr: string
  }

  /** `curl -fsSL --cacert … https://site/node-setup/node-setup.sh | sh -s -- ARGS`, as the README says. */
  async function curlPipeSh(
    root: string,
    args: string[],
    env: Record<string, string> = {},
  ): Promise<ScriptRun> {
    const command = `${findTool('curl')} -fsSL --cacert "$CA" "$URL" | sh -s -- "$@"`
    try {
      const { stdout, stderr } = await run('sh', ['-c', command, 'sh', ...args], {
        env: {
          PATH: process.env.PATH,
          CA: caFile,
          URL: `${siteUrl}/node-setup/node-setup.sh`,
          ASTRAGO_ROOT: root,
          ...env,
        },
      })
      return { code: 0, stdout, stderr }
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string }
      return { code: e.code, stdout: e.stdout, stderr: e.stderr }
    }
  }

  /** Every file under root: content, mode and mtime. */
  function snapshot(root: string): Record<string, { content: string; mode: number; mtimeMs: number }> {
    const out: Record<string, { content: string; mode: number; mtimeMs: number }> = {}
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const full = join(dir, entry.name)
        if (entry.isDirectory()) walk(full)
        else {
          const info = statSync(full)
          out[relative(root, full)] = {
            content: readFileSync(full, 'latin1'),
            mode: info.mode,
            mtimeMs: info.mtimeMs,
          }
        }
      }
    }
    walk(root)
    return out
  }

  async function parseToml(path: string): Promise<Record<string, unknown>> {
    const { stdout } = await run(findTool('python3'), [
      '-c',
      'import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], "rb"))))',
      path,
    ])
    return JSON.parse(stdout)
  }

  const root = () => join(work, 'node-root')
  const upstreams = ['docker.io', 'nvcr.io', 'quay.io']

  it('derives the upstream registries from the bundle', () => {
    expect(upstreamRegistries(metadata)).toEqual(upstreams)
  })

  it('node-setup.sh --dry-run prints every file and command it would write and run, and changes nothing', async () => {
    mkdirSync(join(root(), 'etc', 'containerd'), { recursive: true })
    writeFileSync(join(root(), 'etc', 'containerd', 'config.toml'), CONTAINERD_2_DEFAULT)
    const before = snapshot(root())
    const dry = await curlPipeSh(root(), ['--dry-run'])
    expect(dry.stderr).toBe('')
    expect(dry.code).toBe(0)
    for (const upstream of upstreams) {
      expect(dry.stdout).toContain(`would write /etc/containerd/certs.d/${upstream}/hosts.toml (mode 0644):`)
      expect(dry.stdout).toContain(`would write /etc/containerd/certs.d/${upstream}/astrago-airgap-ca.crt`)
      expect(dry.stdout).toContain(`    | server = "${siteUrl}/v2/${upstream}"`)
    }
    expect(dry.stdout).toContain('would write /usr/local/share/ca-certificates/astrago-airgap-ca.crt')
    expect(dry.stdout).toMatch(/would run: update-ca-certificates /)
    expect(dry.stdout).toContain('would replace /etc/containerd/config.toml')
    expect(dry.stdout).toContain('    |       config_path = "/etc/containerd/certs.d"')
    expect(dry.stdout).toMatch(/nothing was changed/)
    expect(snapshot(root())).toEqual(before)
  })

  it('node-setup.sh installs the CA, writes every hosts.toml and sets config_path; a second run changes nothing', async () => {
    const first = await curlPipeSh(root(), [])
    expect(first.stderr).toBe('')
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/Done: \d+ change/)

    const certsD = join(root(), 'etc', 'containerd', 'certs.d')
    for (const upstream of upstreams) {
      const hostsFile = join(certsD, upstream, 'hosts.toml')
      expect(readFileSync(hostsFile, 'utf8')).toBe(nodeSetup.get(`hosts/${upstream}/hosts.toml`))
      expect(await parseToml(hostsFile)).toEqual({
        server: `${siteUrl}/v2/${upstream}`,
        capabilities: ['pull', 'resolve'],
        override_path: true,
        ca: `/etc/containerd/certs.d/${upstream}/astrago-airgap-ca.crt`,
      })
      expect(readFileSync(join(certsD, upstream, 'astrago-airgap-ca.crt'), 'utf8')).toBe(ca.certPem)
      expect(statSync(hostsFile).mode & 0o777).toBe(0o644)
    }

    // containerd 2.x config: the images registry now reads certs.d; the transfer plugin's setting is untouched.
    const config = join(root(), 'etc', 'containerd', 'config.toml')
    const parsed = (await parseToml(config)) as { plugins: Record<string, Record<string, unknown>> }
    expect(parsed.plugins['io.containerd.cri.v1.images']!.registry).toEqual({
      config_path: '/etc/containerd/certs.d',
    })
    expect(parsed.plugins['io.containerd.transfer.v1.local']!.config_path).toBe('')
    expect(readFileSync(`${config}.astrago-airgap.orig`, 'utf8')).toBe(CONTAINERD_2_DEFAULT)
    expect(first.stdout).toContain('restart containerd')

    // The system trust store was rebuilt by the real update-ca-certificates, and curl trusts the site through it.
    const trustBundle = join(root(), 'etc', 'ssl', 'certs', 'ca-certificates.crt')
    expect(readFileSync(trustBundle, 'utf8')).toContain(ca.certPem.trim())
    const viaTrustStore = await run(findTool('curl'), ['-fsS', '--cacert', trustBundle, `${siteUrl}/ca.crt`])
    expect(viaTrustStore.stdout).toBe(ca.certPem)
    expect(readFileSync(join(root(), 'var', 'lib', 'astrago-airgap', 'node-setup.done'), 'utf8')).toContain(
      `site=${siteUrl}`,
    )

    // Second run: nothing to change, not a byte or an mtime.
    const before = snapshot(root())
    await new Promise((resolve) => setTimeout(resolve, 20))
    const second = await curlPipeSh(root(), [])
    expect(second.code).toBe(0)
    expect(second.stdout).toMatch(/Nothing to change/)
    expect(second.stdout).not.toMatch(/wrote|run:/)
    expect(snapshot(root())).toEqual(before)
    const dryAgain = await curlPipeSh(root(), ['--dry-run'])
    expect(dryAgain.code).toBe(0)
    expect(dryAgain.stdout).toMatch(/Nothing to change/)
  })

  it('node-setup.sh writes a config for containerd 1.x, fills an empty config_path, and reports what it cannot edit', async () => {
    const script = join(work, 'node-setup.sh')
    await run(findTool('curl'), [
      '-fsSL',
      '--cacert',
      caFile,
      '-o',
      script,
      `${siteUrl}/node-setup/node-setup.sh`,
    ])
    const runScript = async (nodeRoot: string, env: Record<string, string> = {}): Promise<ScriptRun> => {
      try {
        const { stdout, stderr } = await run('sh', [script], {
          env: { PATH: process.env.PATH, ASTRAGO_ROOT: nodeRoot, ...env },
        })
        return { code: 0, stdout, stderr }
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string }
        return { code: e.code, stdout: e.stdout, stderr: e.stderr }
      }
    }
    const configOf = (nodeRoot: string) => join(nodeRoot, 'etc', 'containerd', 'config.toml')

    // No config yet, containerd 1.x: a version 2 config with the CRI registry section.
    const fresh = join(work, 'node-fresh')
    const created = await runScript(fresh, { ASTRAGO_CONTAINERD_VERSION: '1.7.27' })
    expect(created.code).toBe(0)
    expect(await parseToml(configOf(fresh))).toEqual({
      version: 2,
      plugins: { 'io.containerd.grpc.v1.cri': { registry: { config_path: '/etc/containerd/certs.d' } } },
    })

    // `containerd config default` of 1.x: config_path = "" next to an empty mirrors table.
    const oneX = join(work, 'node-1x')
    mkdirSync(join(oneX, 'etc', 'containerd'), { recursive: true })
    writeFileSync(
      configOf(oneX),
      [
        'version = 2',
        '',
        '[plugins]',
        '  [plugins."io.containerd.grpc.v1.cri"]',
        '    sandbox_image = "registry.k8s.io/pause:3.8"',
        '    [plugins."io.containerd.grpc.v1.cri".registry]',
        '      config_path = ""',
        '',
        '      [plugins."io.containerd.grpc.v1.cri".registry.auths]',
        '',
        '      [plugins."io.containerd.grpc.v1.cri".registry.mirrors]',
        '',
      ].join('\n'),
    )
    const filled = await runScript(oneX)
    expect(filled.code).toBe(0)
    const oneXConfig = (await parseToml(configOf(oneX))) as {
      plugins: Record<string, { registry: Record<string, unknown> }>
    }
    expect(oneXConfig.plugins['io.containerd.grpc.v1.cri']!.registry.config_path).toBe(
      '/etc/containerd/certs.d',
    )
    expect((await runScript(oneX)).stdout).toMatch(/Nothing to change/)

    // Deprecated mirrors with entries: reported (exit 3), the config left exactly as it was, no marker.
    const legacy = join(work, 'node-legacy')
    mkdirSync(join(legacy, 'etc', 'containerd'), { recursive: true })
    const legacyConfig = [
      'version = 2',
      '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]',
      '  endpoint = ["https://mirror.corp.example"]',
      '',
    ].join('\n')
    writeFileSync(configOf(legacy), legacyConfig)
    const reported = await runScript(legacy)
    expect(reported.code).toBe(3)
    expect(reported.stdout).toMatch(/! .*registry\.mirrors/)
    expect(readFileSync(configOf(legacy), 'utf8')).toBe(legacyConfig)
    expect(existsSync(`${configOf(legacy)}.astrago-airgap.orig`)).toBe(false)
    expect(existsSync(join(legacy, 'var', 'lib', 'astrago-airgap', 'node-setup.done'))).toBe(false)
    // the parts it can do are done
    expect(existsSync(join(legacy, 'etc', 'containerd', 'certs.d', 'nvcr.io', 'hosts.toml'))).toBe(true)

    // Bad usage
    const usage = await runScript(fresh, { ASTRAGO_CONTAINERD_VERSION: '1' }).then(() =>
      run('sh', [script, '--bogus']).catch((error: { code: number; stderr: string }) => error),
    )
    expect(usage).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown option --bogus/) })
  })
})
