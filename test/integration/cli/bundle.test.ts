import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChart } from '../../support/charts.js'
import { runCli } from '../../support/cli.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { type PushedImage, pushImage } from '../../support/images.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const fileSha = (path: string) => sha256(readFileSync(path))

/**
 * `astrago-airgap bundle`, `inspect` and `verify` against real servers: a distribution registry holding synthetic
 * images under their upstream names (docker.io/…, nvcr.io/…, quay.io/…), and an HTTP server standing in for a chart
 * repository and a download site, reached through --mirror exactly as a corporate mirror would be.
 */
describe('bundle', () => {
  let work: string
  let registry: TestRegistry
  let server: FileServer
  const pushed: Record<string, PushedImage> = {}
  let toolSha: string

  const mirrors = () => [
    '--helm',
    findTool('helm'),
    '--mirror',
    `docker.io=${registry.url}/docker.io`,
    '--mirror',
    `nvcr.io=${registry.url}/nvcr.io`,
    '--mirror',
    `quay.io=${registry.url}/quay.io`,
    '--mirror',
    `https://charts.example.org=${server.url}/charts`,
    '--mirror',
    `https://downloads.example.org=${server.url}/downloads`,
  ]

  const definition = (name: string, body: Record<string, unknown>) => {
    const file = join(work, `${name}.yaml`)
    writeFileSync(
      file,
      JSON.stringify(
        {
          apiVersion: 'airgap.astrago.io/v1alpha1',
          kind: 'Bundle',
          metadata: { name, version: '1.0.0' },
          ...body,
        },
        null,
        2,
      ),
    )
    return file
  }

  const fullDefinition = () =>
    definition('itest', {
      platforms: ['linux/amd64'],
      images: [
        'docker.io/library/app:1.0',
        'nvcr.io/nvidia/cuda:12.8.1-base',
        { ref: 'docker.io/library/multi:2.0', platforms: ['linux/amd64', 'linux/arm64'] },
      ],
      charts: [{ name: 'worker', version: '0.1.0', repo: 'https://charts.example.org/stable' }],
      files: [{ url: 'https://downloads.example.org/tools/tool.bin', sha256: toolSha, path: 'bin/tool.bin' }],
      stages: [{ name: 'base', path: './manifests/base' }],
    })

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-bundle-it-'))
    registry = await startRegistry({ flavor: 'distribution-v3' })
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]
    const base = { seed: 'shared-base', size: 2_000_000, sharedAcrossPlatforms: true }
    pushed.app = await pushImage(registry, {
      repository: 'docker.io/library/app',
      tag: '1.0',
      platforms,
      layers: [base, { seed: 'app', size: 700_000 }],
    })
    pushed.multi = await pushImage(registry, {
      repository: 'docker.io/library/multi',
      tag: '2.0',
      format: 'docker',
      platforms,
      layers: [base, { seed: 'multi', size: 300_000 }],
    })
    pushed.cuda = await pushImage(registry, {
      repository: 'nvcr.io/nvidia/cuda',
      tag: '12.8.1-base',
      format: 'docker',
      layers: [{ seed: 'cuda', size: 1_500_000 }],
    })
    pushed.worker = await pushImage(registry, {
      repository: 'quay.io/demo/worker',
      tag: '2.0',
      layers: [base, { seed: 'worker', size: 200_000 }],
    })

    const site = join(work, 'site')
    mkdirSync(join(site, 'charts', 'stable'), { recursive: true })
    mkdirSync(join(site, 'downloads', 'tools'), { recursive: true })
    await createChart(join(site, 'charts', 'stable'), {
      name: 'worker',
      version: '0.1.0',
      images: ['quay.io/demo/worker:2.0'],
    })
    rmSync(join(site, 'charts', 'stable', 'worker'), { recursive: true })
    await run(findTool('helm'), ['repo', 'index', join(site, 'charts', 'stable')])
    const tool = randomBytes(3_000_000)
    writeFileSync(join(site, 'downloads', 'tools', 'tool.bin'), tool)
    toolSha = sha256(tool)
    writeFileSync(join(site, 'downloads', 'tools', 'big.bin'), randomBytes(40 << 20))
    server = await startFileServer(site, {
      throttle: { path: '/downloads/tools/big.bin', bytesPerSecond: 10 << 20 },
    })

    mkdirSync(join(work, 'manifests', 'base'), { recursive: true })
    writeFileSync(
      join(work, 'manifests', 'base', 'namespace.yaml'),
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: itest\n',
    )
    // A workload written in the stage itself: its image is bundled without being listed anywhere else.
    pushed.agent = await pushImage(registry, {
      repository: 'docker.io/library/agent',
      tag: '3.1',
      layers: [base, { seed: 'agent', size: 100_000 }],
    })
    writeFileSync(
      join(work, 'manifests', 'base', 'agent.yaml'),
      'apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: itest\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      containers:\n        - name: agent\n          image: agent:3.1\n',
    )
  })

  afterAll(async () => {
    await server?.stop()
    await registry?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  let bundlePath: string

  it('bundles images, chart-rendered images, charts, files and stages into one tar that inspect describes', async () => {
    const out = join(work, 'out')
    const res = await runCli(['bundle', fullDefinition(), '--output-dir', out, '--json', ...mirrors()])
    expect(res.error).toBeUndefined()
    expect(res.code).toBe(0)
    bundlePath = res.result.path
    expect(bundlePath).toBe(join(out, 'itest-1.0.0.tar'))
    expect(res.result).toMatchObject({ images: 5, charts: 1, files: 1 })
    // The shared base layer is stored once although four images use it.
    expect(res.result.dedupSavedBytes).toBeGreaterThan(2 * 1_900_000)
    expect(res.events.some((e) => e.type === 'task.progress')).toBe(true)
    expect(existsSync(`${bundlePath}.journal`)).toBe(false)

    const listing = (await run('tar', ['-tf', bundlePath])).stdout.trim().split('\n')
    expect(listing[0]).toBe('bundle.json')
    expect(listing).toEqual(
      expect.arrayContaining([
        'oci/index.json',
        'oci/oci-layout',
        'charts/index.yaml',
        'charts/worker-0.1.0.tgz',
        'files/bin/tool.bin',
        'manifests/base/namespace.yaml',
      ]),
    )

    const inspect = await runCli(['inspect', bundlePath, '--json'])
    expect(inspect.code).toBe(0)
    const meta = inspect.result.metadata
    expect(meta).toMatchObject({ name: 'itest', version: '1.0.0' })
    const byName = Object.fromEntries(meta.images.map((i: { name: string }) => [i.name, i]))
    // A single-platform image and a fully selected index keep their upstream digests.
    expect(byName['nvcr.io/nvidia/cuda'].digest).toBe(pushed.cuda!.digest)
    expect(byName['docker.io/library/multi']).toMatchObject({
      digest: pushed.multi!.digest,
      platforms: ['linux/amd64', 'linux/arm64/v8'],
    })
    // An index filtered to linux/amd64 gets a new digest and records the upstream one.
    expect(byName['docker.io/library/app'].upstreamDigest).toBe(pushed.app!.digest)
    expect(byName['docker.io/library/app'].digest).not.toBe(pushed.app!.digest)
    expect(byName['docker.io/library/app'].manifests).toEqual([
      {
        digest: pushed.app!.manifests[0]!.digest,
        platform: 'linux/amd64',
        size: pushed.app!.manifests[0]!.size,
      },
    ])
    // The chart's rendered image came along, and says where from.
    expect(byName['quay.io/demo/worker']).toMatchObject({ digest: pushed.worker!.digest })
    expect(byName['quay.io/demo/worker'].from[0]).toMatch(/chart worker/)
    expect(byName['docker.io/library/agent']).toMatchObject({ digest: pushed.agent!.digest })
    expect(byName['docker.io/library/agent'].from[0]).toMatch(
      /stage manifests \(DaemonSet\/agent container agent/,
    )
    expect(meta.charts[0]).toMatchObject({
      name: 'worker',
      version: '0.1.0',
      images: ['quay.io/demo/worker:2.0'],
    })
    expect(meta.files[0]).toMatchObject({ path: 'files/bin/tool.bin', sha256: toolSha, size: 3_000_000 })

    const human = await runCli(['inspect', bundlePath])
    expect(human.stdout).toContain('itest 1.0.0')
    expect(human.stdout).toContain('docker.io/library/app:1.0')
  })

  it('holds an OCI image layout that skopeo reads, with the digests of the lock', async () => {
    const extracted = join(work, 'extracted')
    mkdirSync(extracted)
    await run('tar', ['-xf', bundlePath, '-C', extracted, 'oci'])
    // skopeo 1.9's oci: transport looks up OCI-typed entries only, so the OCI-format images are read with it: the
    // filtered index of app (our digest) and worker's manifest (upstream's digest).
    const layout = join(extracted, 'oci')
    const meta = (await runCli(['inspect', bundlePath, '--json'])).result.metadata
    const app = meta.images.find((i: { name: string }) => i.name === 'docker.io/library/app')
    for (const [ref, digest] of [
      ['docker.io/library/app:1.0', app.digest],
      ['quay.io/demo/worker:2.0', pushed.worker!.digest],
    ] as const) {
      const target = join(work, `copy-${digest.slice(7, 15)}`)
      await run(findTool('skopeo'), [
        '--insecure-policy',
        'copy',
        '--all',
        '--preserve-digests',
        `oci:${layout}:${ref}`,
        `dir:${target}`,
      ])
      expect(`sha256:${fileSha(join(target, 'manifest.json'))}`).toBe(digest)
    }
    const inspect = await run(findTool('skopeo'), [
      '--insecure-policy',
      'inspect',
      `oci:${layout}:docker.io/library/app:1.0`,
    ])
    expect(JSON.parse(inspect.stdout).Layers).toEqual(pushed.app!.manifests[0]!.layers.map((l) => l.digest))
    // The layout also holds every blob of the Docker-format images, under their upstream digests.
    for (const layer of pushed.cuda!.manifests[0]!.layers) {
      expect(fileSha(join(layout, 'blobs', 'sha256', layer.digest.slice(7)))).toBe(layer.digest.slice(7))
    }
  })

  it('verify passes on the bundle and names the member whose byte was flipped', async () => {
    const ok = await runCli(['verify', bundlePath, '--json'])
    expect(ok.code).toBe(0)
    expect(ok.result.members).toBeGreaterThan(10)

    const damaged = join(work, 'damaged.tar')
    const bytes = readFileSync(bundlePath)
    const listing = (await run('tar', ['-tvf', bundlePath])).stdout
    expect(listing).toContain('files/bin/tool.bin')
    // Flip one byte in the middle of the tool file's data.
    const offset = bytes.indexOf(
      readFileSync(join(work, 'site', 'downloads', 'tools', 'tool.bin')).subarray(0, 64),
    )
    expect(offset).toBeGreaterThan(0)
    bytes[offset + 1_000_000]! ^= 0xff
    writeFileSync(damaged, bytes)
    const bad = await runCli(['verify', damaged, '--json'])
    expect(bad.code).toBe(6)
    expect(bad.error?.code).toBe('E_INTEGRITY')
    expect(bad.error?.message).toContain('files/bin/tool.bin')

    const truncated = join(work, 'truncated.tar')
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)))
    const quick = await runCli(['verify', truncated, '--quick', '--json'])
    expect(quick.code).toBe(6)
    expect(quick.error?.message).toMatch(/truncated|ends/)
  })

  it('is reproducible: a second run (mirrors from a config file this time) writes a byte-identical file', async () => {
    const config = join(work, 'config.yaml')
    const flags = mirrors()
    const entries = flags.flatMap((f, i) => (f === '--mirror' ? [flags[i + 1]!.split(/=(.*)/s)] : []))
    writeFileSync(config, `mirrors:\n${entries.map(([from, to]) => `  "${from}": "${to}"\n`).join('')}`)
    const again = await runCli([
      'bundle',
      fullDefinition(),
      '--output',
      join(work, 'again', 'b.tar'),
      '--json',
      '--helm',
      findTool('helm'),
      '--config',
      config,
    ])
    expect(again.code).toBe(0)
    expect(fileSha(join(work, 'again', 'b.tar'))).toBe(fileSha(bundlePath))
  })

  it('writes split volumes that together are the same stream, and reads them back', async () => {
    const res = await runCli([
      'bundle',
      fullDefinition(),
      '--output',
      join(work, 'split', 'b.tar'),
      '--split-size',
      '2M',
      '--json',
      ...mirrors(),
    ])
    expect(res.code).toBe(0)
    const volumes = (await readdir(join(work, 'split'))).sort()
    expect(volumes.length).toBeGreaterThan(3)
    expect(volumes[0]).toBe('b.tar.000')
    const joined = Buffer.concat(volumes.map((v) => readFileSync(join(work, 'split', v))))
    expect(sha256(joined)).toBe(fileSha(bundlePath))
    expect((await runCli(['verify', join(work, 'split', 'b.tar.000')])).code).toBe(0)
    expect((await runCli(['inspect', join(work, 'split', 'b.tar'), '--json'])).result.metadata.name).toBe(
      'itest',
    )
    rmSync(join(work, 'split', volumes[1]!))
    const missing = await runCli(['verify', join(work, 'split', 'b.tar.000'), '--json'])
    expect(missing.code).toBe(6)
    expect(missing.error?.message).toMatch(/b\.tar\.001 is missing/)
  })

  it('resumes after kill -9 without downloading completed data again, and ends identical', async () => {
    const bigSha = fileSha(join(work, 'site', 'downloads', 'tools', 'big.bin'))
    const def = definition('resume', {
      images: ['nvcr.io/nvidia/cuda:12.8.1-base'],
      files: [{ url: 'https://downloads.example.org/tools/big.bin', sha256: bigSha, path: 'big.bin' }],
    })
    const output = join(work, 'resume', 'r.tar')
    let started = 0
    const killed = await runCli(['bundle', def, '--output', output, '--json', ...mirrors()], {
      onStdoutLine: (line, kill) => {
        const event = JSON.parse(line)
        if (event.type === 'task.progress' && event.unit === 'bytes' && event.done > 0 && !started)
          started = Date.now()
        if (started && Date.now() - started > 2600) kill()
      },
    })
    expect(killed.code).toBe(137)
    expect(existsSync(`${output}.journal`)).toBe(true)
    expect(existsSync(output)).toBe(false)

    const resumed = await runCli(['bundle', def, '--output', output, '--json', ...mirrors()])
    expect(resumed.code).toBe(0)
    expect(resumed.result.resumed).toBe(true)
    const total = 40 << 20
    // What the first run completed is neither downloaded again nor lost.
    expect(resumed.result.fetchedBytes).toBeLessThan(total * 0.75)
    expect(resumed.events.some((e) => e.type === 'log' && e.code === 'I_RESUME')).toBe(true)

    const clean = await runCli([
      'bundle',
      def,
      '--output',
      join(work, 'resume', 'clean.tar'),
      '--json',
      ...mirrors(),
    ])
    expect(clean.code).toBe(0)
    expect(fileSha(output)).toBe(fileSha(join(work, 'resume', 'clean.tar')))
    expect((await runCli(['verify', output])).code).toBe(0)
  })

  describe('bad input', () => {
    const expectError = async (args: string[], exit: number, code: string, pattern: RegExp) => {
      const res = await runCli([...args, '--json'])
      expect(res.error, res.stderr).toBeDefined()
      expect(res.code).toBe(exit)
      expect(res.error!.code).toBe(code)
      expect(res.error!.message).toMatch(pattern)
      expect(res.stderr).not.toMatch(/\n\s+at .*\(.*\.js:\d+/) // never a stack trace
      return res
    }

    it('a tag that does not exist names the reference and what the registry said', async () => {
      const def = definition('missing-tag', { images: ['docker.io/library/app:9.9'] })
      await expectError(
        ['bundle', def, '-o', join(work, 'x.tar'), ...mirrors()],
        4,
        'E_REMOTE',
        /docker\.io\/library\/app:9\.9.*not found.*MANIFEST_UNKNOWN/s,
      )
      expect(existsSync(join(work, 'x.tar'))).toBe(false)
    })

    it('a platform the image lacks lists the ones it has', async () => {
      const def = definition('platform', {
        platforms: ['linux/s390x'],
        images: ['docker.io/library/app:1.0'],
      })
      await expectError(
        ['bundle', def, '-o', join(work, 'x.tar'), ...mirrors()],
        4,
        'E_REMOTE',
        /no linux\/s390x.*linux\/amd64, linux\/arm64\/v8/,
      )
    })

    it('a file whose content does not match its sha256 names URL, expected and actual digest', async () => {
      const def = definition('badsum', {
        files: [
          { url: 'https://downloads.example.org/tools/tool.bin', sha256: 'a'.repeat(64), path: 't.bin' },
        ],
      })
      const res = await expectError(
        ['bundle', def, '-o', join(work, 'bad.tar'), ...mirrors()],
        6,
        'E_INTEGRITY',
        /tool\.bin.*expected sha256:a{64}, got sha256:[0-9a-f]{64}/,
      )
      expect(res.error!.message).toContain(toolSha)
      expect(existsSync(join(work, 'bad.tar'))).toBe(false)
    })

    it('an unreachable mirror is a remote error naming it', async () => {
      const def = definition('unreachable', { images: ['docker.io/library/app:1.0'] })
      await expectError(
        ['bundle', def, '-o', join(work, 'x.tar'), '--mirror', 'docker.io=http://127.0.0.1:9/docker.io'],
        4,
        'E_REMOTE',
        /127\.0\.0\.1:9.*(ECONNREFUSED|refused)/s,
      )
    })

    it('malformed YAML and unknown fields are input errors with file:line:col', async () => {
      const broken = join(work, 'broken.yaml')
      writeFileSync(
        broken,
        'apiVersion: airgap.astrago.io/v1alpha1\nkind: Bundle\nmetadata:\n  name: x\n  version: 1.0.0\nimgaes: []\n',
      )
      await expectError(['bundle', broken], 3, 'E_INPUT', /broken\.yaml:6:1.*imgaes/s)
      writeFileSync(broken, 'apiVersion: [\n')
      await expectError(['bundle', broken], 3, 'E_INPUT', /broken\.yaml:\d+:\d+/)
    })

    it('too little disk space is refused before downloading, naming what is needed and what is free', async () => {
      const small = join(work, 'small-disk')
      mkdirSync(small)
      await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small])
      try {
        const res = await expectError(
          ['bundle', fullDefinition(), '--output-dir', small, ...mirrors()],
          7,
          'E_ENVIRONMENT',
          /Not enough disk space in .*small-disk.*needs .*MiB.*free/s,
        )
        expect(res.error!.hints.join(' ')).toMatch(/--output/)
        expect(await readdir(small)).toEqual([])
      } finally {
        await run('umount', [small])
      }
    })

    it('missing credentials name the registry and how to give them; given ones work', async () => {
      const secured = await startRegistry({
        flavor: 'distribution-v2',
        credentials: { username: 'field', password: 's3cret-pass' },
      })
      try {
        await pushImage(secured, {
          repository: 'ghcr.io/xiilab/private',
          tag: '1.0',
          layers: [{ seed: 'private', size: 100_000 }],
        })
        const def = definition('private', { images: ['ghcr.io/xiilab/private:1.0'] })
        const args = [
          'bundle',
          def,
          '-o',
          join(work, 'private.tar'),
          '--mirror',
          `ghcr.io=${secured.url}/ghcr.io`,
        ]
        const denied = await expectError(args, 5, 'E_AUTH', /ghcr\.io.*requires credentials/s)
        expect(denied.error!.hints.join(' ')).toContain(`--username ${secured.host}=USER`)
        // The upstream's credentials are never sent to the mirror: the mirror's host needs its own.
        const upstreamOnly = await runCli(
          [...args, '--username', 'ghcr.io=field', '--password-stdin', '--json'],
          {
            input: 's3cret-pass\n',
          },
        )
        expect(upstreamOnly.error?.code).toBe('E_AUTH')
        const res = await runCli(
          [...args, '--username', `${secured.host}=field`, '--password-stdin', '--json'],
          { input: 's3cret-pass\n' },
        )
        expect(res.code).toBe(0)
        expect(res.stdout + res.stderr).not.toContain('s3cret-pass')
        const wrong = await runCli(
          [...args, '--username', `${secured.host}=field`, '--password-stdin', '--json'],
          {
            input: 'nope\n',
          },
        )
        expect(wrong.code).toBe(5)
        expect(wrong.error!.message).toMatch(/refused the credentials/)
      } finally {
        await secured.stop()
      }
    })
  })
})
