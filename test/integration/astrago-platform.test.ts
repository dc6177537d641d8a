import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as k8s from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../support/cli.js'
import { type ControlPlane, startControlPlane } from '../support/kube.js'
import { freePort, waitFor } from '../support/net.js'
import { findTool } from '../support/tools.js'

const ROOT = join(import.meta.dirname, '..', '..')

/**
 * The Astrago platform bundle end to end, as `scripts/demo bundles/astrago.yaml` runs it: the simulated upstream
 * (stand-in images and charts under the real names, scripts/demo-data/upstream.yaml), `bundle bundles/astrago.yaml`,
 * then `install` with the demo site values into a control plane with kwok nodes: every stage ready, the air-gap audit
 * clean, the NodePorts of the seed.
 */
describe('the Astrago platform bundle', () => {
  let work: string
  let upstream: ChildProcess
  let cp: ControlPlane
  let mirrorFlags: string[]
  let bundle: string

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-platform-'))
    const flagsFile = join(work, 'mirror-flags')
    upstream = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/demo-upstream.ts', 'bundles/astrago.yaml', flagsFile, work],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let stderr = ''
    upstream.stderr!.on('data', (d: Buffer) => {
      stderr += d
    })
    ;[cp] = await Promise.all([
      startControlPlane(),
      waitFor(
        'the simulated upstream',
        async () => existsSync(flagsFile) && readFileSync(flagsFile, 'utf8').endsWith('\n'),
        {
          timeoutMs: 120_000,
          describe: () => stderr,
        },
      ),
    ])
    mirrorFlags = readFileSync(flagsFile, 'utf8').split('\n').filter(Boolean)
  })

  afterAll(async () => {
    upstream?.kill('SIGTERM')
    await cp?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('bundles every image of the seed’s components, from rendering and the stages, not from a hand-kept list', async () => {
    const res = await runCli(
      [
        'bundle',
        join(ROOT, 'bundles/astrago.yaml'),
        '--output-dir',
        work,
        '--helm',
        findTool('helm'),
        '--json',
        ...mirrorFlags,
      ],
      { cwd: ROOT },
    )
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.result).toMatchObject({ name: 'astrago', charts: 5 })
    bundle = res.result.path
    const meta = (await runCli(['inspect', bundle, '--json'])).result.metadata
    const names = meta.images.map((i: { name: string; tag: string }) => `${i.name}:${i.tag}`)
    expect(names).toEqual(
      expect.arrayContaining([
        'nvcr.io/nvidia/driver:550.144.03-ubuntu22.04',
        'nvcr.io/nvidia/gpu-operator:v25.3.2',
        'registry.k8s.io/nfd/node-feature-discovery:v0.17.3',
        'docker.io/grafana/grafana:10.2.2',
        'quay.io/prometheus/prometheus:v2.48.1',
        'docker.io/bitnamilegacy/mariadb:10.11.4-debian-11-r46',
        'docker.io/bitnamilegacy/keycloak:22.0.5-debian-11-r2',
        'docker.io/mpioperator/mpi-operator:0.4.0',
        'docker.io/xiilab/astrago-posco:core-stage-c5ad',
        'docker.io/xiilab/astrago-posco:frontend-stage-3770',
        'docker.io/library/nginx:1.27.0-alpine3.19',
      ]),
    )
    expect(meta.stages.map((s: { name: string }) => s.name)).toEqual([
      'base',
      'storage',
      'gpu',
      'mpi',
      'monitoring',
      'data',
      'auth',
      'astrago',
    ])
  })

  it('installs with the site values: every stage ready, the audit clean, the proxy on NodePort 30080', async () => {
    const port = await freePort()
    const res = await runCli([
      'install',
      bundle,
      '--kubeconfig',
      cp.kubeconfigPath,
      '--helm',
      findTool('helm'),
      '--values',
      join(ROOT, 'scripts/demo-data/astrago-site.yaml'),
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--advertise',
      '127.0.0.1',
      '--state-dir',
      join(work, 'site'),
      '--json',
    ])
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.result.install.stages.every((s: { action: string }) => s.action === 'applied')).toBe(true)
    expect(res.result.install.stages).toHaveLength(8)
    expect(res.result.audit).toMatchObject({ missing: 0 })
    expect(res.result.audit.ok).toBeGreaterThan(30)

    // No password came from the site values: each was generated, kept in a Secret, and is never in the --json output.
    expect(res.result.install.generated.map((g: { path: string }) => g.path).sort()).toEqual([
      'grafana.adminPassword',
      'keycloak.adminPassword',
      'keycloak.clientSecret',
      'mariadb.password',
      'mariadb.rootPassword',
    ])
    expect(
      res.result.install.generated.every(
        (g: { created: boolean; value?: string }) => g.created && g.value === undefined,
      ),
    ).toBe(true)

    const kc = new k8s.KubeConfig()
    kc.loadFromFile(cp.kubeconfigPath)
    const core = kc.makeApiClient(k8s.CoreV1Api)
    const proxy = await core.readNamespacedService({ name: 'astrago-proxy', namespace: 'astrago' })
    expect(proxy.spec?.ports?.map((p) => p.nodePort)).toContain(30080)
    const storage = kc.makeApiClient(k8s.StorageV1Api)
    const sc = await storage.readStorageClass({ name: 'astrago-nfs-csi' })
    expect(sc.parameters).toMatchObject({ server: expect.any(String) })

    const secret = await core.readNamespacedSecret({
      name: 'astrago-airgap-generated',
      namespace: 'astrago-airgap',
    })
    const decode = (v: string | undefined) => Buffer.from(v ?? '', 'base64').toString('utf8')
    expect(decode(secret.data!['mariadb.rootPassword']).length).toBeGreaterThanOrEqual(20)
    // Astrago's own Secret got the same generated database password the MariaDB stage used.
    const app = await core.readNamespacedSecret({ name: 'astrago-secrets', namespace: 'astrago' })
    expect(decode(app.data!.DB_PASSWORD)).toBe(decode(secret.data!['mariadb.password']))

    // A rerun reuses the generated values, so it finds the same install and has nothing to do.
    const again = await runCli([
      'install',
      bundle,
      '--kubeconfig',
      cp.kubeconfigPath,
      '--helm',
      findTool('helm'),
      '--values',
      join(ROOT, 'scripts/demo-data/astrago-site.yaml'),
      '--no-serve',
      '--json',
    ])
    expect(again.error, again.stderr).toBeUndefined()
    expect(again.result.install).toMatchObject({ mode: 'unchanged', nothingToDo: true })
    expect(again.result.install.generated.every((g: { created: boolean }) => !g.created)).toBe(true)
  })
})
