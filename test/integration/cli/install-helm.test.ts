import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChart } from '../../support/charts.js'
import { runCli } from '../../support/cli.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pushImage } from '../../support/images.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { freePort, loopbackServe } from '../../support/net.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/**
 * `install` runs the helm binary the bundle carries: the real helm, packed as helm's release tarball
 * (helm-v3.21.4-linux-amd64.tar.gz holding linux-amd64/helm), bundled as an extra file, on a machine with no helm on
 * PATH. It is unpacked once into the state folder and reused; --helm still wins.
 */
describe('install with the bundled helm', () => {
  let work: string
  let upstream: TestRegistry
  let server: FileServer
  let cp: ControlPlane
  let bundle: string
  let helmBin: string
  const realHelm = findTool('helm')
  const platform = `linux-${process.arch === 'x64' ? 'amd64' : process.arch}`
  /** No helm on PATH and no $ASTRAGO_HELM: only the bundle has one. */
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ASTRAGO_HELM: '' }
  const helmEvent = (events: Record<string, unknown>[]) =>
    events.find((e) => e.code === 'I_HELM')?.data as Record<string, unknown> | undefined

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-install-helm-'))
    ;[upstream, cp] = await Promise.all([startRegistry(), startControlPlane()])
    await pushImage(upstream, {
      repository: 'quay.io/demo/web',
      tag: '1.0',
      layers: [{ seed: 'web', size: 100_000 }],
    })
    const site = join(work, 'site')
    mkdirSync(join(site, 'charts'), { recursive: true })
    await createChart(join(site, 'charts'), {
      name: 'web',
      version: '1.0.0',
      images: ['quay.io/demo/web:1.0'],
    })
    rmSync(join(site, 'charts', 'web'), { recursive: true })
    await run(realHelm, ['repo', 'index', join(site, 'charts')])
    // helm's release layout, with the real binary.
    const pack = join(work, 'pack', platform)
    mkdirSync(pack, { recursive: true })
    copyFileSync(realHelm, join(pack, 'helm'))
    chmodSync(join(pack, 'helm'), 0o755)
    writeFileSync(join(pack, 'README.md'), 'helm\n')
    writeFileSync(join(pack, 'LICENSE'), 'Apache-2.0\n')
    mkdirSync(join(site, 'helm'))
    const tgz = join(site, 'helm', `helm-v3.21.4-${platform}.tar.gz`)
    await run('tar', ['-czf', tgz, '-C', join(work, 'pack'), platform])
    server = await startFileServer(site)

    mkdirSync(join(work, 'manifests', 'web'), { recursive: true })
    writeFileSync(
      join(work, 'manifests', 'web', 'stage.yaml'),
      'apiVersion: airgap.astrago.io/v1alpha1\nkind: Stage\ntimeout: 2m\ncharts:\n  - {chart: web, version: 1.0.0, release: web, namespace: web}\n',
    )
    const definition = join(work, 'site.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'helmsite', version: '1.0.0' },
        charts: [{ name: 'web', version: '1.0.0', repo: 'https://charts.example.org/stable' }],
        files: [
          {
            url: `https://get.helm.sh/helm-v3.21.4-${platform}.tar.gz`,
            sha256: sha256(readFileSync(tgz)),
            path: `bin/helm-v3.21.4-${platform}.tar.gz`,
          },
        ],
        stages: [{ name: 'web', path: './manifests/web' }],
      }),
    )
    const res = await runCli([
      'bundle',
      definition,
      '--output-dir',
      work,
      '--json',
      '--helm',
      realHelm,
      '--mirror',
      `quay.io=${upstream.url}/quay.io`,
      '--mirror',
      `https://charts.example.org/stable=${server.url}/charts`,
      '--mirror',
      `https://get.helm.sh=${server.url}/helm`,
    ])
    expect(res.code, res.stderr).toBe(0)
    bundle = res.result.path
    helmBin = join(dirname(bundle), 'astrago-airgap-site', 'bin', 'helm')
  })

  afterAll(async () => {
    await Promise.all([server?.stop(), upstream?.stop(), cp?.stop()])
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('unpacks the bundled helm into the state folder and installs the chart with it', async () => {
    const port = await freePort()
    const res = await runCli(
      ['install', bundle, '--kubeconfig', cp.kubeconfigPath, '--json', ...loopbackServe(port)],
      { env },
    )
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.code).toBe(0)
    expect(res.result.install.stages).toMatchObject([
      { name: 'web', action: 'applied', releases: ['web/web'] },
    ])
    expect(helmEvent(res.events)).toMatchObject({
      from: 'bundle',
      member: `files/bin/helm-v3.21.4-${platform}.tar.gz`,
    })
    expect(statSync(helmBin).mode & 0o777).toBe(0o755)
    expect(sha256(readFileSync(helmBin))).toBe(sha256(readFileSync(realHelm)))
    const list = JSON.parse(
      (await run(realHelm, ['--kubeconfig', cp.kubeconfigPath, 'list', '-n', 'web', '-o', 'json'])).stdout,
    )
    expect(list[0]).toMatchObject({ name: 'web', status: 'deployed' })
  })

  it('reuses the unpacked helm on the next run', async () => {
    const before = statSync(helmBin)
    const res = await runCli(
      ['install', bundle, '--kubeconfig', cp.kubeconfigPath, '--json', '--no-serve', '--reapply'],
      { env },
    )
    expect(res.error, res.stderr).toBeUndefined()
    expect(helmEvent(res.events)).toMatchObject({ from: 'bundle', reused: true })
    const after = statSync(helmBin)
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs])
  })

  it('--helm still wins over the bundled one', async () => {
    const marker = join(work, 'wrapper-called')
    const wrapper = join(work, 'wrapper', 'helm')
    mkdirSync(dirname(wrapper))
    writeFileSync(wrapper, `#!/bin/sh\necho "$1" >> '${marker}'\nexec '${realHelm}' "$@"\n`)
    chmodSync(wrapper, 0o755)
    const res = await runCli(
      [
        'install',
        bundle,
        '--kubeconfig',
        cp.kubeconfigPath,
        '--json',
        '--no-serve',
        '--reapply',
        '--helm',
        wrapper,
      ],
      { env },
    )
    expect(res.error, res.stderr).toBeUndefined()
    expect(helmEvent(res.events)).toMatchObject({ path: wrapper, from: 'flag' })
    expect(readFileSync(marker, 'utf8')).toContain('upgrade')
  })
})
