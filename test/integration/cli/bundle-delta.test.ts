import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleReader } from '../../../src/bundle/reader.js'
import { type AptSigningKey, generateAptSigningKey } from '../../../src/packages/apt-signature.js'
import { KubeClient } from '../../../src/stages/kube-client.js'
import { runCli } from '../../support/cli.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { freePort, loopbackServe } from '../../support/net.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { type ReleaseFixture, startReleaseFixture } from '../../support/release-fixture.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)

/**
 * Delta bundles (issue 14): 1.0.0 and 1.1.0 of one definition, built by `bundle` from a real registry and chart
 * repository, with one image changed (a new tag sharing the base layer), one chart at a new version, and the stage
 * files that name them. `bundle --base` writes 1.1.0 as a delta on 1.0.0; a site that has 1.0.0 verifies, pushes and
 * installs the delta with --base, and gets what the full 1.1.0 gives: the same registry content, the same cluster.
 */
describe('delta bundles', () => {
  let fx: ReleaseFixture
  let key: AptSigningKey
  let cp: ControlPlane
  let full10: string
  let full11: string
  let delta: string
  // biome-ignore lint/suspicious/noExplicitAny: the --json result of `bundle`
  let deltaResult: any
  const helm = findTool('helm')

  const stage = (dir: string, files: Record<string, string>) => {
    mkdirSync(join(fx.work, dir), { recursive: true })
    for (const [name, text] of Object.entries(files)) writeFileSync(join(fx.work, dir, name), text)
  }
  const appStage = (tag: string, mode: string) => ({
    'app.yaml': `apiVersion: v1
kind: Namespace
metadata: {name: delta}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: delta}
data: {mode: ${mode}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: delta}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: docker.io/library/app:${tag}}]
`,
  })
  const webStage = (version: string) => ({
    'stage.yaml': `apiVersion: airgap.astrago.io/v1alpha1
kind: Stage
timeout: 2m
charts:
  - {chart: web, version: ${version}, release: web, namespace: delta-web}
`,
  })
  const definition = (version: string, appTag: string, webVersion: string, dir: string) =>
    fx.definition(`${version}.yaml`, {
      metadata: { name: 'release', version },
      platforms: ['linux/amd64'],
      images: [`docker.io/library/app:${appTag}`],
      charts: [{ name: 'web', version: webVersion, repo: 'https://charts.example.org/stable' }],
      stages: [
        { name: 'app', path: `./${dir}/app` },
        { name: 'web', path: `./${dir}/web` },
      ],
    })
  const sign = () => ['--signing-key', key.homeDir, '--installer', '/usr/bin/true']
  const tarMembers = async (file: string) =>
    (await run('tar', ['-tf', file])).stdout.trim().split('\n').filter(Boolean)
  const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')
  const inspect = async (file: string) => {
    const res = await runCli(['inspect', file, '--json'])
    expect(res.code, res.stderr).toBe(0)
    return res.result.metadata
  }

  beforeAll(async () => {
    ;[fx, cp] = await Promise.all([startReleaseFixture('delta-it'), startControlPlane()])
    key = await generateAptSigningKey({
      homeDir: join(fx.work, 'key'),
      userId: 'delta test <delta@astrago.invalid>',
      created: new Date('2026-01-01T00:00:00Z'),
    })
    // 1.0.0: app:1.0, the chart web 1.0.0 (rendering quay.io/demo/web:1.0).
    await fx.push('docker.io/library/app', '1.0', 'app-1.0')
    await fx.push('quay.io/demo/web', '1.0', 'web-1.0')
    await fx.chart('web', '1.0.0', ['quay.io/demo/web:1.0'])
    stage('m10/app', appStage('1.0', 'first'))
    stage('m10/web', webStage('1.0.0'))
    full10 = await fx.bundle(
      definition('1.0.0', '1.0', '1.0.0', 'm10'),
      join(fx.work, 'out', 'release-1.0.0.tar'),
      ...sign(),
    )
    // 1.1.0: app:1.1 (a new top layer on the same base layer), web 1.1.0 (same image, new chart).
    await fx.push('docker.io/library/app', '1.1', 'app-1.1')
    await fx.chart('web', '1.1.0', ['quay.io/demo/web:1.0'])
    stage('m11/app', appStage('1.1', 'second'))
    stage('m11/web', webStage('1.1.0'))
    const def11 = definition('1.1.0', '1.1', '1.1.0', 'm11')
    full11 = await fx.bundle(def11, join(fx.work, 'out', 'release-1.1.0.tar'), ...sign())
    const made = await runCli([
      'bundle',
      def11,
      '--output-dir',
      join(fx.work, 'out'),
      '--json',
      ...fx.mirrors(),
      ...sign(),
      '--base',
      full10,
    ])
    expect(made.code, made.stderr).toBe(0)
    deltaResult = made.result
    delta = deltaResult.path
  })

  afterAll(async () => {
    await Promise.all([fx?.stop(), cp?.stop()])
  })

  it('writes only the members 1.0.0 lacks, under the complete 1.1.0 inventory naming its base', async () => {
    const [m10, m11, md] = [await inspect(full10), await inspect(full11), await inspect(delta)]
    const digest = `sha256:${createHash('sha256')
      .update((await run('tar', ['-xOf', full10, 'bundle.json'], { encoding: 'buffer' })).stdout)
      .digest('hex')}`
    expect(md.base).toEqual({ name: 'release', version: '1.0.0', bundleJson: digest })
    const { base: _base, signature: _s1, ...deltaRest } = md
    const { signature: _s2, ...fullRest } = m11
    expect(deltaRest).toEqual(fullRest)

    const inBase = new Set(m10.members.map((m: { path: string; sha256: string }) => `${m.path} ${m.sha256}`))
    const expected = m11.members
      .filter((m: { path: string; sha256: string }) => !inBase.has(`${m.path} ${m.sha256}`))
      .map((m: { path: string }) => m.path)
    expect(await tarMembers(delta)).toEqual(['bundle.json', 'bundle.json.sig', ...expected])
    // What changed is there: app:1.1's own layer, the new chart, the changed stage files; the shared base layer, the
    // web image and the installer are left to the base.
    expect(expected).toContain('charts/web-1.1.0.tgz')
    expect(expected).toContain('manifests/app/app.yaml')
    expect(expected).not.toContain('installer')
    // The blobs 1.1.0 shares with 1.0.0 (the base layer under app:1.1, all of web:1.0) stay out.
    const left = m11.members.filter((m: { path: string; sha256: string }) =>
      inBase.has(`${m.path} ${m.sha256}`),
    )
    expect(
      left.filter((m: { path: string }) => m.path.startsWith('oci/blobs/')).length,
    ).toBeGreaterThanOrEqual(4)
    // The default file name says what it is, and the result counts what was left to the base.
    expect(delta).toBe(join(fx.work, 'out', 'release-1.1.0-from-1.0.0.tar'))
    expect(deltaResult.base).toEqual({
      name: 'release',
      version: '1.0.0',
      members: left.length,
      bytes: left.reduce((a: number, m: { size: number }) => a + m.size, 0),
    })
    expect(statSync(delta).size).toBeLessThan(statSync(full11).size)
  })

  it('is reproducible, from the base bundle or from its bundle.json alone', async () => {
    const dir = join(fx.work, 'base-json')
    mkdirSync(dir, { recursive: true })
    await run('tar', ['-xf', full10, '-C', dir, 'bundle.json'])
    const again = await fx.bundle(
      join(fx.work, '1.1.0.yaml'),
      join(fx.work, 'out', 'again.tar'),
      ...sign(),
      '--base',
      join(dir, 'bundle.json'),
    )
    expect(sha256(again)).toBe(sha256(delta))
    rmSync(again)
  })

  it('verify needs the base, refuses a wrong one, and checks every member across both', async () => {
    const alone = await runCli(['verify', delta, '--json'])
    expect(alone.code).toBe(3)
    expect(alone.error?.message).toContain('is a delta bundle')
    expect(alone.error?.hints.join(' ')).toContain('--base')

    const ok = await runCli(['verify', delta, '--base', full10, '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    const fullCount = (await inspect(full11)).members.length
    const own = (await tarMembers(delta)).length - 2
    expect(ok.result).toMatchObject({
      members: fullCount,
      base: { version: '1.0.0', members: fullCount - own },
    })

    const wrong = await runCli(['verify', delta, '--base', full11, '--json'])
    expect(wrong.code).toBe(3)
    expect(wrong.error?.message).toContain('is not the base of')

    const notDelta = await runCli(['verify', full11, '--base', full10, '--json'])
    expect(notDelta.code).toBe(3)
    expect(notDelta.error?.message).toContain('not a delta')

    const chained = await runCli([
      'bundle',
      join(fx.work, '1.1.0.yaml'),
      '--output',
      join(fx.work, 'out', 'chained.tar'),
      '--base',
      delta,
      '--json',
      ...fx.mirrors(),
    ])
    expect(chained.code).toBe(3)
    expect(chained.error?.message).toContain('itself a delta bundle')
  })

  it('a damaged base fails a full verify, naming the member the delta takes from it', async () => {
    const damaged = join(fx.work, 'out', 'damaged-1.0.0.tar')
    copyFileSync(full10, damaged)
    const own = new Set(await tarMembers(delta))
    const reader = await BundleReader.open(damaged)
    const taken = reader.metadata.members.find((m) => !own.has(m.path) && m.size > 1000)!
    const at = reader.locate(taken.path)!.offset + Math.floor(taken.size / 2)
    await reader.close()
    const file = await open(damaged, 'r+')
    const byte = Buffer.alloc(1)
    await file.read(byte, 0, 1, at)
    await file.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, at)
    await file.close()
    const res = await runCli(['verify', delta, '--base', damaged, '--json'])
    expect(res.code).toBe(6)
    expect(res.error?.message).toContain(taken.path)
    rmSync(damaged)
  })

  it('pushed with its base, it gives a registry exactly what the full 1.1.0 gives', async () => {
    const [a, b] = await Promise.all([startRegistry(), startRegistry()])
    try {
      const pushFull = await runCli(['push', full11, '--registry', `http://${a.host}`, '--json'])
      expect(pushFull.code, pushFull.stderr).toBe(0)
      const pushDelta = await runCli([
        'push',
        delta,
        '--base',
        full10,
        '--registry',
        `http://${b.host}`,
        '--json',
      ])
      expect(pushDelta.code, pushDelta.stderr).toBe(0)
      expect(pushDelta.result.images).toBe(pushFull.result.images)
      const m11 = await inspect(full11)
      const skopeo = findTool('skopeo')
      const refs = [
        ...m11.images.map((i: { name: string; tag: string }) => `${i.name}:${i.tag}`),
        'charts/web:1.1.0',
      ]
      for (const ref of refs) {
        const raw = async (registry: TestRegistry) =>
          (await run(skopeo, ['inspect', '--tls-verify=false', '--raw', `docker://${registry.host}/${ref}`]))
            .stdout
        expect(await raw(b), ref).toBe(await raw(a))
      }
      // Every blob arrives whole: skopeo checks each digest as it copies the image out of the delta's registry.
      await run(skopeo, [
        'copy',
        '--src-tls-verify=false',
        `docker://${b.host}/docker.io/library/app:1.1`,
        `oci:${join(fx.work, 'copied')}:app`,
      ])
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('installed on a site that has 1.0.0, it leaves the cluster as a fresh install of the full 1.1.0', async () => {
    const common = ['--kubeconfig', cp.kubeconfigPath, '--helm', helm, '--json']
    const install = async (...args: string[]) => {
      const port = await freePort()
      const res = await runCli(['install', ...args, ...common, ...loopbackServe(port)])
      expect(res.error, res.stderr).toBeUndefined()
      expect(res.code).toBe(0)
      return res
    }
    const client = KubeClient.load({ kubeconfig: cp.kubeconfigPath })
    const state = async () => {
      const deployment = (await client.get({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: 'delta',
        name: 'app',
      })) as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } }
      const settings = (await client.get({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: 'delta',
        name: 'settings',
      })) as unknown as { data: Record<string, string> }
      const releases = JSON.parse(
        (await run(helm, ['--kubeconfig', cp.kubeconfigPath, 'list', '-A', '-o', 'json'])).stdout,
      )
      return {
        image: deployment.spec.template.spec.containers[0]!.image,
        settings: settings.data,
        releases: releases.map((r: { name: string; namespace: string; chart: string; status: string }) => ({
          name: r.name,
          namespace: r.namespace,
          chart: r.chart,
          status: r.status,
        })),
      }
    }
    await install(full10)
    const upgraded = await install(delta, '--base', full10)
    expect(upgraded.result.install.stages.map((s: { name: string; action: string }) => s.name)).toEqual([
      'app',
      'web',
    ])
    const viaDelta = await state()
    expect(viaDelta).toMatchObject({
      image: 'docker.io/library/app:1.1',
      settings: { mode: 'second' },
      releases: [{ name: 'web', namespace: 'delta-web', chart: 'web-1.1.0', status: 'deployed' }],
    })
    // The site is at 1.1.0 whether it came from the delta or the full bundle: installing the full one has nothing to do.
    const same = await install(full11)
    expect(same.result.install).toMatchObject({ mode: 'unchanged', nothingToDo: true })
    const removed = await runCli(['uninstall', ...common, '--purge'])
    expect(removed.code, removed.stderr).toBe(0)
    await install(full11)
    expect(await state()).toEqual(viaDelta)
  })
})
