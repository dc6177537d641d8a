import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as https from 'node:https'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import * as k8s from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFromDefinition } from '../../../src/bundle/bundle-from-definition.js'
import { serveBundle } from '../../../src/serve/serve-bundle.js'
import { helm } from '../../support/charts.js'
import { runCli } from '../../support/cli.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pushImage } from '../../support/images.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { freePort, loopbackServe } from '../../support/net.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

const ROOT = join(import.meta.dirname, '..', '..', '..')

/** The images Harbor's chart 1.15.1 renders with the Astrago definition's values (Trivy and metrics off). */
const HARBOR_IMAGES = [
  'nginx-photon',
  'harbor-portal',
  'harbor-core',
  'harbor-jobservice',
  'registry-photon',
  'harbor-registryctl',
  'harbor-db',
  'redis-photon',
].map((name) => `docker.io/goharbor/${name}:v2.11.1`)

/**
 * The optional stage registry of the Astrago profile (manifests/astrago/registry, as the definition ships it) on a
 * real control plane with kwok nodes, with the demo's labelled stand-in of Harbor's chart 1.15.1
 * (scripts/demo-data/charts/harbor: the real chart's workload and Service names and images). Off by default; on, it
 * installs Harbor from the served bundle with a generated admin password, on the NFS StorageClass, on NodePort 30002.
 * Then the bootstrap's second half: `install --push-to` into a real registry standing in for Harbor records it, and
 * the site server's node setup points containerd's hosts.toml at it; a rerun finds everything there and sends nothing.
 */
describe('the registry stage (Harbor in the cluster)', () => {
  let work: string
  let cp: ControlPlane
  let upstream: TestRegistry
  let harbor: TestRegistry
  let charts: FileServer
  let bundle: string
  let core: k8s.CoreV1Api
  let apps: k8s.AppsV1Api
  const helmBin = findTool('helm')
  const stateDir = () => join(work, 'site-state')

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-registry-stage-'))
    ;[cp, upstream, harbor] = await Promise.all([
      startControlPlane(),
      startRegistry(),
      startRegistry({
        flavor: 'distribution-v2',
        credentials: { username: 'admin', password: 'harbor-pass' },
      }),
    ])
    for (const image of HARBOR_IMAGES) {
      const [repository, tag] = image.split(':') as [string, string]
      await pushImage(upstream, { repository, tag, layers: [{ seed: image, size: 2048 }] })
    }
    // The stand-in chart, in a chart repository as helm.goharbor.io serves the real one.
    const repo = join(work, 'charts-site', 'harbor')
    mkdirSync(repo, { recursive: true })
    await helm(['package', join(ROOT, 'scripts/demo-data/charts/harbor'), '--destination', repo], {
      home: join(work, 'helm-home'),
    })
    await helm(['repo', 'index', repo], { home: join(work, 'helm-home') })
    charts = await startFileServer(join(work, 'charts-site'))
    const kc = new k8s.KubeConfig()
    kc.loadFromFile(cp.kubeconfigPath)
    core = kc.makeApiClient(k8s.CoreV1Api)
    apps = kc.makeApiClient(k8s.AppsV1Api)

    // A stage that names images under the site registry as the Astrago charts do (${{ site.airgap.registry }}).
    mkdirSync(join(work, 'uses'))
    writeFileSync(
      join(work, 'uses', 'registry.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: registry-user, namespace: default}\ndata:\n  image: "$' +
        '{{ site.airgap.registry }}/docker.io/goharbor/harbor-core:v2.11.1"\n',
    )
    // The Harbor entries of bundles/astrago.yaml (chart and stage), the chart repository pointed at the stand-in.
    const definition = join(work, 'harbor.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'harbor-test', version: '1.0.0' },
        charts: [
          {
            name: 'harbor',
            version: '1.15.1',
            repo: `${charts.url}/harbor`,
            values: { expose: { type: 'nodePort', tls: { enabled: false } }, trivy: { enabled: false } },
          },
        ],
        stages: [
          { name: 'registry', path: relative(work, join(ROOT, 'manifests/astrago/registry')) },
          { name: 'uses', path: 'uses' },
        ],
      }),
    )
    const built = await bundleFromDefinition({
      definition,
      outputDir: join(work, 'out'),
      mirrors: { 'docker.io': `${upstream.url}/docker.io` },
      helm: helmBin,
      toolVersion: 'test',
      sink: { emit() {} },
    })
    bundle = built.path
  })

  afterAll(async () => {
    await Promise.all([charts?.stop(), upstream?.stop(), harbor?.stop(), cp?.stop()])
    if (work) rmSync(work, { recursive: true, force: true })
  })

  const install = async (values: string, extra: string[] = [], input?: string) => {
    const file = join(work, `values-${Math.random().toString(36).slice(2)}.yaml`)
    writeFileSync(file, values)
    const port = await freePort()
    return runCli(
      [
        'install',
        bundle,
        '--kubeconfig',
        cp.kubeconfigPath,
        '--helm',
        helmBin,
        '--values',
        file,
        ...loopbackServe(port),
        '--state-dir',
        stateDir(),
        '--json',
        ...extra,
      ],
      input === undefined ? {} : { input },
    )
  }

  it('bundles the chart’s images from rendering it', async () => {
    const meta = (await runCli(['inspect', bundle, '--json'])).result.metadata
    expect(meta.images.map((i: { name: string; tag: string }) => `${i.name}:${i.tag}`).sort()).toEqual(
      [...HARBOR_IMAGES].sort(),
    )
  })

  it('is off unless the site values turn it on: nothing is installed and no password generated', async () => {
    const res = await install('externalHost: 192.0.2.10\n')
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.result.install.stages.map((s: { name: string }) => s.name)).toEqual(['uses'])
    expect(res.result.install.generated ?? []).toEqual([])
    await expect(core.readNamespace({ name: 'harbor' })).rejects.toThrow()
  })

  it('installs Harbor from the served bundle when registry.enabled: NodePort 30002, NFS storage, generated password', async () => {
    const res = await install('externalHost: 192.0.2.10\nregistry:\n  enabled: true\n')
    expect(res.error, res.stderr).toBeUndefined()
    expect(
      res.result.install.stages.map((s: { name: string; action: string }) => `${s.name}:${s.action}`),
    ).toEqual(['registry:applied', 'uses:applied'])
    expect(res.result.install.generated.map((g: { path: string }) => g.path)).toEqual([
      'registry.adminPassword',
    ])

    for (const name of [
      'harbor-core',
      'harbor-portal',
      'harbor-jobservice',
      'harbor-registry',
      'harbor-nginx',
    ]) {
      const d = await apps.readNamespacedDeployment({ name, namespace: 'harbor' })
      expect(d.status?.availableReplicas, name).toBe(1)
    }
    for (const name of ['harbor-database', 'harbor-redis']) {
      const s = await apps.readNamespacedStatefulSet({ name, namespace: 'harbor' })
      expect(s.status?.readyReplicas, name).toBe(1)
    }
    const core1 = await apps.readNamespacedDeployment({ name: 'harbor-core', namespace: 'harbor' })
    expect(core1.spec?.template.spec?.containers[0]?.image).toBe('goharbor/harbor-core:v2.11.1')
    const service = await core.readNamespacedService({ name: 'harbor', namespace: 'harbor' })
    expect(service.spec?.type).toBe('NodePort')
    expect(service.spec?.ports?.[0]?.nodePort).toBe(30002)

    // The chart got the generated password (the one kept for the site) and the site's storage and URL.
    const generated = await core.readNamespacedSecret({
      name: 'astrago-airgap-generated',
      namespace: 'astrago-airgap',
    })
    const password = Buffer.from(generated.data!['registry.adminPassword']!, 'base64').toString()
    expect(password.length).toBeGreaterThanOrEqual(16)
    const secret = await core.readNamespacedSecret({ name: 'harbor-core', namespace: 'harbor' })
    const data = (key: string) => Buffer.from(secret.data![key]!, 'base64').toString()
    expect(data('HARBOR_ADMIN_PASSWORD')).toBe(password)
    expect(data('EXT_ENDPOINT')).toBe('http://192.0.2.10:30002')
    expect(data('STORAGE_CLASS_REGISTRY')).toBe('astrago-nfs-csi')
    expect(data('STORAGE_CLASS_DATABASE')).toBe('astrago-nfs-csi')
  })

  it('install --push-to pushes the bundle into the registry, node setup names it, a rerun sends nothing', async () => {
    const values = 'externalHost: 192.0.2.10\nregistry:\n  enabled: true\n'
    const push = [
      '--push-to',
      `http://${harbor.host}`,
      '--push-prefix',
      'library',
      '--username',
      `${harbor.host}=admin`,
      '--password-stdin',
      '--relocate-images',
    ]
    const first = await install(values, push, 'harbor-pass\n')
    expect(first.error, first.stderr).toBeUndefined()
    expect(first.result.push).toMatchObject({ images: HARBOR_IMAGES.length, charts: 1, upToDate: 0 })
    expect(first.result.push.bytesUploaded).toBeGreaterThan(0)
    // Relocated: what named the site server's registry now names the pushed copies (an upgrade of the stages).
    expect(first.result.install.mode).toBe('upgrade')
    const user = await core.readNamespacedConfigMap({ name: 'registry-user', namespace: 'default' })
    expect(user.data?.image).toBe(`${harbor.host}/library/docker.io/goharbor/harbor-core:v2.11.1`)
    expect(JSON.parse(readFileSync(join(stateDir(), 'pull-registry.json'), 'utf8'))).toMatchObject({
      url: `http://${harbor.host}`,
      prefix: 'library',
    })

    // The site server (run later from the same state folder) gives nodes hosts.toml files naming the registry.
    const serving = await serveBundle({
      bundle,
      host: '127.0.0.1',
      port: 0,
      advertise: ['127.0.0.1'],
      stateDir: stateDir(),
      sink: { emit() {} },
    })
    try {
      const get = (path: string) =>
        new Promise<string>((resolve, reject) => {
          https
            .get(`${serving.url}${path}`, { ca: serving.caPem }, (res) => {
              let body = ''
              res.on('data', (d) => {
                body += d
              })
              res.on('end', () =>
                res.statusCode === 200 ? resolve(body) : reject(new Error(`${path}: ${res.statusCode}`)),
              )
            })
            .on('error', reject)
        })
      const toml = await get('/node-setup/hosts/docker.io/hosts.toml')
      expect(toml).toContain(`[host."http://${harbor.host}/v2/library/docker.io"]`)
      expect(toml).toContain(`server = "${serving.url}/v2/docker.io"`)
      expect(await get(`/node-setup/hosts/${harbor.host}/hosts.toml`)).toContain(
        `server = "http://${harbor.host}"`,
      )
      const script = await get('/node-setup/node-setup.sh')
      expect(script).toContain(`http://${harbor.host}/v2/library/docker.io`)
      // What the node pulls through that path is there: the registry serves the image under the pushed name.
      const manifest = await fetch(
        `${harbor.url}/v2/library/docker.io/goharbor/harbor-core/manifests/v2.11.1`,
        {
          method: 'HEAD',
          headers: {
            authorization: `Basic ${Buffer.from('admin:harbor-pass').toString('base64')}`,
            accept:
              'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json',
          },
        },
      )
      expect(manifest.status).toBe(200)
    } finally {
      await serving.stop()
    }

    // A rerun (and an upgrade: the push does not depend on the stages) finds every image there and sends nothing.
    const again = await install(values, push, 'harbor-pass\n')
    expect(again.error, again.stderr).toBeUndefined()
    expect(again.result.install.nothingToDo).toBe(true)
    expect(again.result.push).toMatchObject({
      images: HARBOR_IMAGES.length,
      charts: 1,
      upToDate: HARBOR_IMAGES.length + 1,
      bytesUploaded: 0,
      blobsUploaded: 0,
      manifestsPushed: 0,
    })
  })

  it('turning it off again is an upgrade that removes Harbor', async () => {
    const res = await install('externalHost: 192.0.2.10\nregistry:\n  enabled: false\n')
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.result.install.mode).toBe('upgrade')
    expect(res.result.install.stages.map((s: { name: string }) => s.name)).toEqual(['uses'])
    expect(res.result.install.pruned.releases).toEqual([
      { name: 'harbor', namespace: 'harbor', chart: 'harbor', version: '1.15.1' },
    ])
    await expect(
      apps.readNamespacedDeployment({ name: 'harbor-core', namespace: 'harbor' }),
    ).rejects.toThrow()
  })
})
