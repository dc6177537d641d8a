import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AptSigningKey,
  detachSign,
  generateAptSigningKey,
  stopGpgAgent,
} from '../../../src/packages/apt-signature.js'
import { runCli } from '../../support/cli.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { type ReleaseFixture, startReleaseFixture } from '../../support/release-fixture.js'
import { createRpmUpstream } from '../../support/rpm-upstream.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)

/**
 * `diff A B` (issue 14) on two real bundles, 1.0.0 and 1.1.0 of one definition, built by `bundle` from a real
 * registry, chart repository, download site and signed rpm repository, with a change of every kind between them:
 * an image added, one removed, one whose tag now points elsewhere, a tag that moved with its chart's new version;
 * a chart added, one removed, one at a new version; files changed, added and removed; rpm packages added, removed
 * and at another version; stage files changed, added and removed, a stage added and one removed; another
 * installer; and so the sizes.
 */
describe('diff', () => {
  let fx: ReleaseFixture
  let key: AptSigningKey
  let rpmA: FileServer
  let rpmB: FileServer
  let bundleA: string
  let bundleB: string
  let splitB: string
  const digests: Record<string, string> = {}

  const stage = (dir: string, files: Record<string, string>) => {
    mkdirSync(join(fx.work, dir), { recursive: true })
    for (const [name, text] of Object.entries(files)) writeFileSync(join(fx.work, dir, name), text)
  }
  const configMap = (name: string, data: Record<string, string>) =>
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: diff\ndata:\n${Object.entries(
      data,
    )
      .map(([k, v]) => `  ${k}: "${v}"\n`)
      .join('')}`

  beforeAll(async () => {
    for (const tool of ['rpmbuild', 'createrepo_c']) findTool(tool)
    fx = await startReleaseFixture('diff-it')
    key = await generateAptSigningKey({
      homeDir: join(fx.work, 'key'),
      userId: 'diff test <diff@astrago.invalid>',
      created: new Date('2026-01-01T00:00:00Z'),
    })

    // The rpm upstream of 1.0.0, and of 1.1.0 without lib-a 2.0 (so lib-a goes back to 1.0).
    const upstream = await createRpmUpstream(fx.work, join(fx.work, 'rpm-a'), join(fx.work, 'rpm-gnupg'))
    cpSync(join(fx.work, 'rpm-a'), join(fx.work, 'rpm-b'), { recursive: true })
    rmSync(join(fx.work, 'rpm-b', 'lib-a-2.0-1.noarch.rpm'))
    rmSync(join(fx.work, 'rpm-b', 'repodata'), { recursive: true })
    await run(findTool('createrepo_c'), [
      '--quiet',
      '--no-database',
      '--general-compress-type=xz',
      join(fx.work, 'rpm-b'),
    ])
    const repomd = readFileSync(join(fx.work, 'rpm-b', 'repodata', 'repomd.xml'), 'utf8')
    writeFileSync(
      join(fx.work, 'rpm-b', 'repodata', 'repomd.xml.asc'),
      await detachSign(upstream.key, repomd, new Date()),
    )
    await stopGpgAgent(join(fx.work, 'rpm-gnupg'))
    rpmA = await startFileServer(join(fx.work, 'rpm-a'))
    rpmB = await startFileServer(join(fx.work, 'rpm-b'))
    const rpm = (url: string, packages: string[]) => ({
      name: 'el-test',
      rpm: { baseurl: url, architectures: ['x86_64', 'noarch'], keyrings: [upstream.keyFile] },
      packages,
    })

    // 1.0.0
    digests.appA = (await fx.push('docker.io/library/app', '1.0', 'app-1.0-first')).digest
    digests.old = (await fx.push('docker.io/library/old', '1.0', 'old-1.0')).digest
    digests.worker20 = (await fx.push('quay.io/demo/worker', '2.0', 'worker-2.0')).digest
    await fx.chart('worker', '0.1.0', ['quay.io/demo/worker:2.0'])
    await fx.chart('legacy', '1.0.0', ['docker.io/library/app:1.0'])
    const toolA = fx.download('tool.bin', 'tool, first build\n')
    const readme = fx.download('readme.txt', 'read me\n')
    stage('manifests-a/base', {
      'namespace.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: diff\n',
      'settings.yaml': configMap('settings', { mode: 'standard', replicas: '1', region: 'site-a' }),
      'obsolete.yaml': configMap('obsolete', { old: 'yes' }),
    })
    stage('manifests-a/cleanup', { 'cleanup.yaml': configMap('cleanup', { run: 'once' }) })
    bundleA = await fx.bundle(
      fx.definition('a.yaml', {
        metadata: { name: 'release', version: '1.0.0' },
        platforms: ['linux/amd64'],
        images: ['docker.io/library/app:1.0', 'docker.io/library/old:1.0'],
        charts: [
          { name: 'worker', version: '0.1.0', repo: 'https://charts.example.org/stable' },
          { name: 'legacy', version: '1.0.0', repo: 'https://charts.example.org/stable' },
        ],
        files: [
          { url: 'https://downloads.example.org/tool.bin', sha256: toolA, path: 'bin/tool.bin' },
          { url: 'https://downloads.example.org/readme.txt', sha256: readme, path: 'readme.txt' },
        ],
        packages: [rpm(rpmA.url, ['lib-a', 'helper'])],
        stages: [
          { name: 'base', path: './manifests-a/base' },
          { name: 'cleanup', path: './manifests-a/cleanup' },
        ],
      }),
      join(fx.work, 'out', 'release-1.0.0.tar'),
      '--signing-key',
      key.homeDir,
      '--installer',
      '/usr/bin/true',
    )

    // 1.1.0: app:1.0 rebuilt upstream, old dropped, new added, the chart's new version renders worker:2.1.
    digests.appB = (await fx.push('docker.io/library/app', '1.0', 'app-1.0-rebuilt')).digest
    digests.fresh = (await fx.push('docker.io/library/new', '1.0', 'new-1.0')).digest
    digests.worker21 = (await fx.push('quay.io/demo/worker', '2.1', 'worker-2.1')).digest
    await fx.chart('worker', '0.2.0', ['quay.io/demo/worker:2.1'])
    await fx.chart('extra', '0.1.0', ['docker.io/library/new:1.0'])
    const toolB = fx.download('tool-1.1.bin', 'tool, second build\n')
    const notes = fx.download('notes.txt', 'release notes\n')
    stage('manifests-b/base', {
      'namespace.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: diff\n',
      'settings.yaml': configMap('settings', { mode: 'standard', replicas: '3', region: 'site-a' }),
      'quota.yaml': configMap('quota', { gpus: '8' }),
    })
    stage('manifests-b/apps', { 'apps.yaml': configMap('apps', { enabled: 'true' }) })
    const definitionB = fx.definition('b.yaml', {
      metadata: { name: 'release', version: '1.1.0' },
      platforms: ['linux/amd64'],
      images: ['docker.io/library/app:1.0', 'docker.io/library/new:1.0'],
      charts: [
        { name: 'worker', version: '0.2.0', repo: 'https://charts.example.org/stable' },
        { name: 'extra', version: '0.1.0', repo: 'https://charts.example.org/stable' },
      ],
      files: [
        { url: 'https://downloads.example.org/tool-1.1.bin', sha256: toolB, path: 'bin/tool.bin' },
        { url: 'https://downloads.example.org/notes.txt', sha256: notes, path: 'notes.txt' },
      ],
      packages: [rpm(rpmB.url, ['lib-a', 'unrelated'])],
      stages: [
        { name: 'base', path: './manifests-b/base' },
        { name: 'apps', path: './manifests-b/apps' },
      ],
    })
    const flagsB = ['--signing-key', key.homeDir, '--installer', '/usr/bin/false']
    bundleB = await fx.bundle(definitionB, join(fx.work, 'out', 'release-1.1.0.tar'), ...flagsB)
    splitB = await fx.bundle(
      definitionB,
      join(fx.work, 'split', 'release-1.1.0.tar'),
      ...flagsB,
      '--split-size',
      '1M',
    )
  }, 600_000)

  afterAll(async () => {
    if (key) await stopGpgAgent(key.homeDir)
    await rpmA?.stop()
    await rpmB?.stop()
    await fx?.stop()
  })

  it('shows every kind of change as a structured result', async () => {
    const res = await runCli(['diff', bundleA, bundleB, '--json'])
    expect(res.code, res.stderr + res.stdout).toBe(0)
    const d = res.result
    expect(d.identical).toBe(false)
    expect(d.a).toMatchObject({ name: 'release', version: '1.0.0', signedBy: key.fingerprint })
    expect(d.b).toMatchObject({ name: 'release', version: '1.1.0' })

    expect(d.images.added).toEqual([
      { name: 'docker.io/library/new', tag: '1.0', digest: digests.fresh },
      { name: 'quay.io/demo/worker', tag: '2.1', digest: digests.worker21 },
    ])
    expect(d.images.removed).toEqual([
      { name: 'docker.io/library/old', tag: '1.0', digest: digests.old },
      { name: 'quay.io/demo/worker', tag: '2.0', digest: digests.worker20 },
    ])
    expect(d.images.changed).toEqual([
      { name: 'docker.io/library/app', tag: '1.0', from: digests.appA, to: digests.appB },
    ])
    expect(d.images.tagMoves).toEqual([{ name: 'quay.io/demo/worker', from: ['2.0'], to: ['2.1'] }])

    expect(d.charts).toEqual({
      added: [{ name: 'extra', version: '0.1.0' }],
      removed: [{ name: 'legacy', version: '1.0.0' }],
      changed: [{ name: 'worker', from: '0.1.0', to: '0.2.0' }],
    })
    expect(d.files.added).toEqual([expect.objectContaining({ path: 'files/notes.txt' })])
    expect(d.files.removed).toEqual([expect.objectContaining({ path: 'files/readme.txt' })])
    expect(d.files.changed).toEqual([expect.objectContaining({ path: 'files/bin/tool.bin' })])

    expect(d.packages.repositories).toEqual({ added: [], removed: [], changed: [] })
    expect(d.packages.byRepository).toEqual([
      {
        path: 'repo/rpm/el-test',
        added: [{ name: 'unrelated', architecture: 'noarch', version: '1.0-1' }],
        removed: [{ name: 'helper', architecture: 'noarch', version: '1.0-1' }],
        changed: [{ name: 'lib-a', architecture: 'noarch', from: '2.0-1', to: '1.0-1' }],
      },
    ])

    expect(d.stages.order).toEqual({ a: ['base', 'cleanup'], b: ['base', 'apps'] })
    expect(d.stages.added).toEqual(['apps'])
    expect(d.stages.removed).toEqual(['cleanup'])
    expect(d.stages.files.added).toEqual(['manifests/base/quota.yaml', 'manifests/apps/apps.yaml'])
    expect(d.stages.files.removed).toEqual(['manifests/base/obsolete.yaml', 'manifests/cleanup/cleanup.yaml'])
    expect(d.stages.files.changed).toEqual([
      {
        path: 'manifests/base/settings.yaml',
        diff: [
          '--- a/manifests/base/settings.yaml',
          '+++ b/manifests/base/settings.yaml',
          '@@ -5,5 +5,5 @@',
          '   namespace: diff',
          ' data:',
          '   mode: "standard"',
          '-  replicas: "1"',
          '+  replicas: "3"',
          '   region: "site-a"',
          '',
        ].join('\n'),
      },
    ])

    expect(d.installer.changed).toBe(true)
    expect(d.installer.a.sha256).not.toBe(d.installer.b.sha256)
    const sizeA = Number((await run('stat', ['-c', '%s', bundleA])).stdout)
    const sizeB = Number((await run('stat', ['-c', '%s', bundleB])).stdout)
    expect(d.sizes).toMatchObject({ a: sizeA, b: sizeB, delta: sizeB - sizeA })
  })

  it('prints the same for people, with the manifests as a unified diff', async () => {
    const res = await runCli(['diff', bundleA, bundleB])
    expect(res.code, res.stderr).toBe(0)
    const out = res.stdout
    expect(out).toContain('release 1.0.0')
    expect(out).toContain(`  + docker.io/library/new:1.0  ${digests.fresh}`)
    expect(out).toContain(`  - docker.io/library/old:1.0  ${digests.old}`)
    expect(out).toContain(`  ~ docker.io/library/app:1.0  ${digests.appA} → ${digests.appB}`)
    expect(out).toContain('  > quay.io/demo/worker  tag 2.0 → 2.1')
    expect(out).toContain('  ~ worker 0.1.0 → 0.2.0')
    expect(out).toContain('  - legacy 1.0.0')
    expect(out).toContain('  - stage cleanup')
    expect(out).toContain('    ~ lib-a 2.0-1 → 1.0-1 noarch')
    expect(out).toContain('  + stage apps')
    expect(out).toMatch(/^ {4}- {2}replicas: "1"\n {4}\+ {2}replicas: "3"$/m)
  })

  it('reads split volumes, and finds two builds of one definition identical', async () => {
    const res = await runCli(['diff', bundleB, `${splitB}`, '--json'])
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.identical).toBe(true)
    expect(res.result.images).toMatchObject({ added: [], removed: [], changed: [], tagMoves: [] })
    expect(res.result.stages.files.changed).toEqual([])
    const across = await runCli(['diff', bundleA, splitB, '--json'])
    expect(across.result.images.tagMoves).toEqual([
      { name: 'quay.io/demo/worker', from: ['2.0'], to: ['2.1'] },
    ])
  })

  it('reads only the inventories and stage members: a damaged blob does not slow or stop it', async () => {
    // Overwrite the data of the largest image layer: diff never reads there.
    const damaged = join(fx.work, 'damaged.tar')
    const bytes = readFileSync(bundleB)
    const meta = (await runCli(['inspect', bundleB, '--json'])).result.metadata
    const largest = meta.members
      .filter((m: { path: string }) => m.path.startsWith('oci/blobs/'))
      .sort((x: { size: number }, y: { size: number }) => y.size - x.size)[0]
    const listing = (await run('tar', ['-tvRf', bundleB])).stdout.split('\n')
    const block = Number(/^block (\d+):/.exec(listing.find((l) => l.endsWith(largest.path))!)![1])
    bytes.fill(0x41, (block + 1) * 512, (block + 1) * 512 + Math.min(largest.size, 100_000))
    writeFileSync(damaged, bytes)
    const res = await runCli(['diff', bundleA, damaged, '--json'])
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.images.changed).toHaveLength(1)
    // A stage file whose bytes no longer match bundle.json is refused.
    const settings = bytes.indexOf(Buffer.from('replicas: "3"'))
    expect(settings).toBeGreaterThan(0)
    bytes[settings + 'replicas: "'.length] = '4'.charCodeAt(0)
    writeFileSync(damaged, bytes)
    const bad = await runCli(['diff', bundleA, damaged, '--json'])
    expect(bad.code).toBe(6)
    expect(bad.error?.code).toBe('E_INTEGRITY')
    expect(bad.error?.message).toContain('manifests/base/settings.yaml')
  })
})
