import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KubeClient } from '../../../src/stages/kube-client.js'
import { runCli } from '../../support/cli.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { freePort, loopbackServe } from '../../support/net.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { prepareSiteBundle, type SiteBundleFixture } from '../../support/site-bundle.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)

/**
 * The site's whole job through the built CLI, as an installer runs it: `install` (verify → serve → push into a
 * site registry → stages with readiness) into a real control plane with kwok nodes, `status`, a second `install`
 * that has nothing to do, and `uninstall` leaving nothing of the bundle behind. The engine's finer behaviour
 * (resume, prune, diagnostics) is covered by deploy.test.ts.
 */
describe('install command', () => {
  let work: string
  let site: TestRegistry
  let cp: ControlPlane
  let bundle: string
  const helm = findTool('helm')
  const kubectl = (args: string[]) => run(helm, ['--kubeconfig', cp.kubeconfigPath, ...args])

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-install-cmd-'))
    let fixture: SiteBundleFixture | undefined
    ;[fixture, site, cp] = await Promise.all([
      prepareSiteBundle(work, {
        helm,
        web: {
          stageYaml: `apiVersion: airgap.astrago.io/v1alpha1
kind: Stage
timeout: 2m
charts:
  - {chart: web, version: 1.0.0, release: web, namespace: web, values: {replicas: '\${{ site.webReplicas }}', password: '\${{ site.webPassword }}'}}
values:
  schema:
    type: object
    properties:
      webReplicas: {type: integer, minimum: 1, default: 1}
      webPassword: {type: string, generate: password}
`,
        },
        jobs: true,
      }),
      startRegistry({
        flavor: 'distribution-v2',
        credentials: { username: 'admin', password: 'harbor-pass' },
      }),
      startControlPlane(),
    ])
    const res = await runCli([...fixture.bundleArgs, '--output-dir', work]).finally(() => fixture?.stop())
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.images).toBe(3)
    bundle = res.result.path
  })

  afterAll(async () => {
    await Promise.all([site?.stop(), cp?.stop()])
    if (work) rmSync(work, { recursive: true, force: true })
  })

  const common = () => ['--kubeconfig', cp.kubeconfigPath, '--helm', helm, '--json']

  it('--dry-run shows the plan and touches nothing', async () => {
    const res = await runCli(['install', bundle, ...common(), '--dry-run'])
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.install.mode).toBe('dry-run')
    expect(res.result.install.plan.stages.map((s: { name: string }) => s.name)).toEqual([
      'core',
      'web',
      'jobs',
    ])
    const status = await runCli(['status', '--kubeconfig', cp.kubeconfigPath, '--json'])
    expect(status.code).toBe(8)
  })

  it('installs: serves the bundle, pushes into the site registry, applies every stage until ready', async () => {
    const values = join(work, 'values.yaml')
    writeFileSync(values, 'webReplicas: 2\n')
    const port = await freePort()
    const res = await runCli(
      [
        'install',
        bundle,
        ...common(),
        '--values',
        values,
        ...loopbackServe(port),
        '--push-to',
        `http://${site.host}`,
        '--push-prefix',
        'astrago',
        '--username',
        `${site.host}=admin`,
        '--password-stdin',
      ],
      { input: 'harbor-pass\n' },
    )
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.code).toBe(0)
    expect(res.result.install.mode).toBe('install')
    expect(
      res.result.install.stages.map((s: { name: string; action: string }) => `${s.name}:${s.action}`),
    ).toEqual(['core:applied', 'web:applied', 'jobs:applied'])
    expect(res.result.serving.url).toBe(`https://127.0.0.1:${port}`)
    expect(res.result.push).toMatchObject({ images: 3, charts: 1 })
    // Without --relocate-images the nodes' mirrors still go to the server this command ran, which has ended: a warning.
    expect(res.result.pullFrom).toEqual({
      kind: 'served',
      where: `https://127.0.0.1:${port}`,
      endsWithCommand: true,
    })
    expect(res.events.filter((e) => e.code === 'W_PULL_SERVER_ENDS')).toHaveLength(1)
    // The pushed copy keeps its full original name under the prefix.
    const { stdout } = await run(findTool('skopeo'), [
      'inspect',
      '--tls-verify=false',
      '--creds',
      'admin:harbor-pass',
      `docker://${site.host}/astrago/docker.io/xiilab/astrago:core-v1`,
    ])
    expect(JSON.parse(stdout).Name).toBe(`${site.host}/astrago/docker.io/xiilab/astrago`)
    // The chart release runs with the site value.
    const list = JSON.parse((await kubectl(['list', '-n', 'web', '-o', 'json'])).stdout)
    expect(list[0]).toMatchObject({ name: 'web', status: 'deployed' })
    expect(res.stdout + res.stderr).not.toContain('harbor-pass')
  })

  it('status shows the installed bundle; a second install has nothing to do', async () => {
    const status = await runCli(['status', '--kubeconfig', cp.kubeconfigPath, '--json'])
    expect(status.code).toBe(0)
    expect(JSON.stringify(status.result)).toContain('"site"')
    const again = await runCli([
      'install',
      bundle,
      ...common(),
      '--no-serve',
      '--values',
      join(work, 'values.yaml'),
    ])
    expect(again.code, again.stderr).toBe(0)
    expect(again.result.install).toMatchObject({ mode: 'unchanged', nothingToDo: true })
    // A server running apart from the command: nothing to warn about.
    expect(again.result.pullFrom?.endsWithCommand ?? false).toBe(false)
    expect(again.events.filter((e) => e.code === 'W_PULL_SERVER_ENDS')).toEqual([])
  })

  it('uninstall removes every object of the bundle, keeps the generated passwords, and --purge removes them too', async () => {
    const res = await runCli(['uninstall', ...common()])
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.nothingToDo).toBe(false)
    const list = JSON.parse((await kubectl(['list', '-A', '-o', 'json'])).stdout)
    expect(list).toEqual([])
    const status = await runCli(['status', '--kubeconfig', cp.kubeconfigPath, '--json'])
    expect(status.code).toBe(8)
    // The passwords generated for this site stay (data volumes may outlive the install), and their namespace with them.
    expect(res.result.kept).toEqual([
      { apiVersion: 'v1', kind: 'Secret', namespace: 'astrago-airgap', name: 'astrago-airgap-generated' },
    ])
    const client = KubeClient.load({ kubeconfig: cp.kubeconfigPath })
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: 'astrago-airgap',
      name: 'astrago-airgap-generated',
    }
    expect(await client.get(secret)).toBeDefined()
    const purged = await runCli(['uninstall', ...common(), '--purge'])
    expect(purged.code, purged.stderr).toBe(0)
    expect(purged.result.removed.objects).toEqual([secret])
    expect(await client.get(secret)).toBeUndefined()
  })
})
