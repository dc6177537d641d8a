import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as k8s from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../support/cli.js'
import { playGpuOperator } from '../../support/gpu-operator.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { freePort, loopbackServe, waitFor } from '../../support/net.js'
import { findTool } from '../../support/tools.js'

const ROOT = join(import.meta.dirname, '..', '..', '..')

/**
 * The Astrago platform bundle end to end, as `scripts/demo bundles/astrago.yaml` runs it: the simulated upstream
 * (stand-in images and charts under the real names, scripts/demo-data/upstream.yaml; Xiilab's three charts from a
 * stand-in git repository served over real git HTTP), `bundle` of the DEMO copy of bundles/astrago.yaml (named
 * astrago-demo, git refs on the stand-in's commit), then `install` with the demo site values into a control plane
 * with kwok nodes: every stage ready (Loki, metrics-server and the binpack scheduler included), the air-gap audit
 * clean, the objects under the real charts' names.
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
    // No GPU operand runs on kwok nodes: the harness reports the ClusterPolicy ready, as the operator would.
    await playGpuOperator(cp.kubeconfigPath)
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
        // bundles/astrago.yaml, or its DEMO copy without the release binaries the stand-in upstream cannot serve.
        readFileSync(join(work, 'definition'), 'utf8').trim(),
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
    // A bundle of stand-ins is named so it cannot be mistaken for the real one.
    expect(res.result).toMatchObject({ name: 'astrago-demo', charts: 8 })
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
        // Rendered from Xiilab's charts (from git): the astrago chart, loki-stack, gpu-process-exporter.
        'docker.io/xiilab/astrago:time-prediction-v0.2',
        'registry.k8s.io/kube-scheduler:v1.28.4',
        'registry.k8s.io/metrics-server/metrics-server:v0.7.0',
        'docker.io/grafana/loki:2.9.2',
        'docker.io/grafana/promtail:2.9.2',
        'nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04',
        // Started by Astrago core at run time (images: with a reason), and a workload base.
        'docker.io/xiilab/astrago-dataset-nginx:latest',
        'docker.io/xiilab/git-sync:v3.6.0',
        'docker.io/xiilab/astrago:pytorch-23.07-cuda12.1',
        // Harbor, for the optional stage registry (off in the demo site values: the install has 8 stages).
        'docker.io/goharbor/harbor-core:v2.11.1',
      ]),
    )
    // The git charts record where they came from.
    expect(meta.charts.map((c: { name: string }) => c.name)).toEqual(
      expect.arrayContaining(['astrago', 'loki-stack', 'gpu-process-exporter']),
    )
    expect(meta.stages.map((s: { name: string }) => s.name)).toEqual([
      'base',
      'storage',
      'gpu',
      'mpi',
      'logging',
      'monitoring',
      'auth',
      'astrago',
      'registry',
    ])
  })

  it('init-site writes the site values file of the bundle; unfilled, install refuses it naming the fields', async () => {
    const file = join(work, 'site-unfilled.yaml')
    const res = await runCli(['init-site', bundle, '--output', file, '--json'])
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.result).toMatchObject({
      path: file,
      from: 'bundle',
      required: ['externalHost', 'nfs.server', 'nfs.path', 'keycloak.url', 'astrago.url'],
    })
    expect(res.result.generated).toContain('keycloak.clientSecret')
    expect(readFileSync(file, 'utf8')).toContain('realm: astrago\n')
    const again = await runCli(['init-site', bundle, '--output', file, '--json'])
    expect(again.error?.code).toBe('E_USAGE')
    const refused = await runCli(['install', bundle, '--values', file, '--dry-run', '--json'])
    expect(refused.error?.code).toBe('E_INPUT')
    expect(refused.error?.message).toContain('externalHost: required')
    expect(refused.error?.message).toContain('nfs.server: required')
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
      ...loopbackServe(port),
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
      'astrago.nextauthSecret',
      'astrago.userInitPassword',
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
    // The chart's own objects, under the real chart's names.
    const proxy = await core.readNamespacedService({ name: 'nginx-service', namespace: 'astrago' })
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
    // Core, batch and monitor got the same generated database password MariaDB (astrago-mariadb) was given, and
    // their images from the site registry (full upstream name after the site's host:port).
    const apps = kc.makeApiClient(k8s.AppsV1Api)
    const envOf = (d: k8s.V1Deployment) =>
      Object.fromEntries((d.spec!.template.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]))
    const mariadbPassword = decode(secret.data!['mariadb.password'])
    for (const name of ['astrago-backend-core', 'astrago-backend-batch', 'astrago-backend-monitor']) {
      const deployment = await apps.readNamespacedDeployment({ name, namespace: 'astrago' })
      expect(envOf(deployment), name).toMatchObject({
        SPRING_DATASOURCE_URL: 'jdbc:mariadb://astrago-mariadb:3306/astrago',
        SPRING_DATASOURCE_PASSWORD: mariadbPassword,
      })
      expect(deployment.spec!.template.spec!.containers[0]!.image).toMatch(
        new RegExp(`^127\\.0\\.0\\.1:${port}/docker\\.io/xiilab/astrago-posco:`),
      )
    }
    const mariadbSecret = await core.readNamespacedSecret({ name: 'astrago-mariadb', namespace: 'astrago' })
    expect(decode(mariadbSecret.data!['mariadb-password'])).toBe(mariadbPassword)
    await apps.readNamespacedStatefulSet({ name: 'astrago-mariadb', namespace: 'astrago' })
    // metrics-server, the binpack scheduler, Loki and Promtail run (the install waited for them).
    await apps.readNamespacedDeployment({ name: 'metrics-server', namespace: 'kube-system' })
    await apps.readNamespacedDeployment({ name: 'binpack-scheduler', namespace: 'astrago' })
    await apps.readNamespacedDeployment({ name: 'loki-stack-loki', namespace: 'loki-stack' })
    await apps.readNamespacedDaemonSet({ name: 'loki-stack-promtail', namespace: 'loki-stack' })
    await apps.readNamespacedDaemonSet({ name: 'gpu-process-metrics-collector', namespace: 'gpu-operator' })
    await core.readNamespacedPersistentVolumeClaim({ name: 'workload-log-pvc', namespace: 'astrago' })
    // The proxy's routes as the chart defines them, logs to Loki included.
    const routes = await core.readNamespacedConfigMap({ name: 'astrago-nginx-config', namespace: 'astrago' })
    expect(routes.data!['nginx.conf']).toContain('http://loki-stack-loki.loki-stack.svc:3100/loki/api/v1/')

    // The GPU Operator's driver container gets the bundle's apt repository on the site server (signed-by the bundle
    // key, mounted beside the list) and the site CA.
    const repoConfig = await core.readNamespacedConfigMap({
      name: 'astrago-airgap-repo-config',
      namespace: 'gpu-operator',
    })
    expect(repoConfig.data!['astrago-airgap.list']).toContain(
      `deb [arch=amd64 signed-by=/etc/apt/sources.list.d/astrago-airgap-ubuntu-jammy.asc] https://127.0.0.1:${port}/repo/apt/ubuntu-jammy jammy main`,
    )
    expect(repoConfig.data!['astrago-airgap-ubuntu-jammy.asc']).toContain('BEGIN PGP PUBLIC KEY BLOCK')
    const certConfig = await core.readNamespacedConfigMap({
      name: 'astrago-airgap-cert-config',
      namespace: 'gpu-operator',
    })
    expect(certConfig.data!['astrago-airgap-ca.crt']).toBe(
      readFileSync(join(work, 'site', 'ca', 'ca.crt'), 'utf8'),
    )
    expect(certConfig.data!['tls-ca-bundle.pem']).toBe(
      readFileSync(join(work, 'site', 'ca', 'ca.crt'), 'utf8'),
    )

    // Keycloak imports the Astrago realm (realm and client from the site values, the secret from a Secret) with the
    // Astrago login theme; Astrago core gets the same generated client secret.
    const realmMap = await core.readNamespacedConfigMap({
      name: 'keycloak-astrago-realm',
      namespace: 'keycloak',
    })
    const realm = JSON.parse(realmMap.data!['astrago-realm.json']!)
    expect(realm).toMatchObject({ realm: 'astrago', loginTheme: 'astrago' })
    expect(realm.clients[0]).toMatchObject({
      clientId: 'astrago-client',
      secret: '$' + '{ASTRAGO_CLIENT_SECRET}',
    })
    const theme = await core.readNamespacedConfigMap({
      name: 'keycloak-astrago-theme',
      namespace: 'keycloak',
    })
    expect(Object.keys(theme.data!).sort()).toEqual(['astrago-logo.svg', 'astrago.css', 'theme.properties'])
    const clientSecret = decode(secret.data!['keycloak.clientSecret'])
    expect(clientSecret.length).toBeGreaterThanOrEqual(16)
    const kcSecret = await core.readNamespacedSecret({
      name: 'keycloak-astrago-client',
      namespace: 'keycloak',
    })
    expect(decode(kcSecret.data!['client-secret'])).toBe(clientSecret)
    const frontend = await apps.readNamespacedDeployment({ name: 'astrago-frontend', namespace: 'astrago' })
    expect(envOf(frontend)).toMatchObject({
      AUTH_CLIENT_SECRET: clientSecret,
      NEXTAUTH_URL: 'http://192.0.2.10:30080',
      KEYCLOAK_HOST: 'http://192.0.2.10:30080/auth/',
    })

    // The Grafana dashboards, as ConfigMaps the chart's sidecar loads (label grafana_dashboard=1).
    const dashboards = await core.listNamespacedConfigMap({
      namespace: 'prometheus',
      labelSelector: 'grafana_dashboard=1',
    })
    expect(dashboards.items.map((c) => c.metadata!.name).sort()).toEqual([
      'astrago-dashboard-cluster',
      'astrago-dashboard-gpu',
      'astrago-dashboard-workloads',
    ])
    for (const c of dashboards.items)
      for (const text of Object.values(c.data ?? {})) expect(JSON.parse(text).uid).toMatch(/^astrago-/)

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
      '--site-url',
      `https://127.0.0.1:${port}`,
      '--state-dir',
      join(work, 'site'),
      '--json',
    ])
    expect(again.error, again.stderr).toBeUndefined()
    expect(again.result.install).toMatchObject({ mode: 'unchanged', nothingToDo: true })
    expect(again.result.install.generated.every((g: { created: boolean }) => !g.created)).toBe(true)
  })
})
