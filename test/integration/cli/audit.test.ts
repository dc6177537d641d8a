import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleReader } from '../../../src/bundle/reader.js'
import { silentSink } from '../../../src/events/types.js'
import { type ServingBundle, serveBundle } from '../../../src/serve/serve-bundle.js'
import { KubeClient } from '../../../src/stages/kube-client.js'
import type { KubeObject } from '../../../src/stages/objects.js'
import { runCli } from '../../support/cli.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { freePort, loopbackServe } from '../../support/net.js'
import { buildSmallBundle } from '../../support/no-egress-bundle.js'
import { findTool } from '../../support/tools.js'

interface Image {
  image: string
  references: string[]
  upstream: string
  status: string
  foundIn: string[]
  workloads: { kind: string; namespace: string; name: string; containers: string[] }[]
}
interface AuditError {
  code: string
  message: string
  data: { audit: { images: Image[]; missing: number; ok: number } }
}

const NFD = 'registry.k8s.io/nfd/node-feature-discovery:v0.17.3'

/**
 * The air-gap audit against a real control plane: a bundle installed through the CLI is clean (the audit is the
 * install's last step, and `audit --bundle` agrees); a Deployment applied by hand with an image the bundle does not
 * carry (today's NFD failure) is MISSING with its upstream registry and workload, against the bundle's lock and
 * against the live site registry; and an install whose namespaces hold such a workload fails unless --no-audit.
 */
describe('air-gap audit', () => {
  let work: string
  let cp: ControlPlane
  let bundle: string
  let serving: ServingBundle | undefined
  const helm = findTool('helm')

  const deployment = (namespace: string, name: string, image: string): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          initContainers: [{ name: 'init', image: 'busybox:1.36' }],
          containers: [{ name: 'worker', image }],
        },
      },
    },
  })

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-audit-'))
    ;[cp, bundle] = await Promise.all([startControlPlane(), buildSmallBundle(work, helm)])
  })

  afterAll(async () => {
    await serving?.stop()
    await cp?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  const kube = () => ['--kubeconfig', cp.kubeconfigPath, '--json']

  it('install ends with the audit of what it installed: clean', async () => {
    const port = await freePort()
    const res = await runCli(['install', bundle, ...kube(), '--helm', helm, ...loopbackServe(port)])
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.code).toBe(0)
    const audit = res.result.audit
    expect(audit).toMatchObject({ namespaces: ['astrago'], ok: 2, missing: 0, invalid: 0 })
    expect(audit.against.registry).toBe(`https://127.0.0.1:${port}`)
    expect(audit.images.map((i: Image) => [i.image, i.foundIn])).toEqual([
      ['docker.io/library/busybox:1.36', ['bundle', 'registry']],
      ['docker.io/xiilab/astrago:core-v1', ['bundle', 'registry']],
    ])
  })

  it('audit --bundle: every workload image of the cluster is in the bundle', async () => {
    const res = await runCli(['audit', ...kube(), '--bundle', bundle])
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.code).toBe(0)
    expect(res.result).toMatchObject({ namespaces: 'all', ok: 2, missing: 0 })
    const busybox = res.result.images.find((i: Image) => i.image === 'docker.io/library/busybox:1.36')
    // Written unqualified, normalized; the Job's pods are reported under the Job.
    expect(busybox.references).toEqual(['busybox:1.36'])
    expect(busybox.workloads).toEqual([
      { kind: 'Job', namespace: 'astrago', name: 'migrate', containers: ['migrate'] },
    ])
  })

  it('a Deployment applied by hand with an image not in the bundle is MISSING, with its workload', async () => {
    const client = KubeClient.load({ kubeconfig: cp.kubeconfigPath })
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'gpu-operator' } })
    await client.apply(deployment('gpu-operator', 'nfd-worker', NFD))

    const res = await runCli(['audit', ...kube(), '--bundle', bundle])
    expect(res.code).toBe(8)
    const error = res.error as unknown as AuditError
    expect(error.code).toBe('E_CLUSTER')
    expect(error.message).toContain(NFD)
    expect(error.data.audit).toMatchObject({ missing: 1, ok: 2 })
    const missing = error.data.audit.images.filter((i) => i.status === 'missing')
    expect(missing).toEqual([
      {
        image: NFD,
        references: [NFD],
        upstream: 'registry.k8s.io',
        status: 'missing',
        foundIn: [],
        workloads: [
          { kind: 'Deployment', namespace: 'gpu-operator', name: 'nfd-worker', containers: ['worker'] },
        ],
      },
    ])
    // The same init image in the new Deployment is OK and names it too.
    const busybox = error.data.audit.images.find((i) => i.image === 'docker.io/library/busybox:1.36')
    expect(busybox?.workloads.map((w) => `${w.kind} ${w.namespace}/${w.name}`)).toEqual([
      'Job astrago/migrate',
      'Deployment gpu-operator/nfd-worker',
    ])

    // Without --json: the report on stdout, the error on stderr, the same exit code.
    const plain = await runCli(['audit', '--kubeconfig', cp.kubeconfigPath, '--bundle', bundle, '--quiet'])
    expect(plain.code).toBe(8)
    expect(plain.stdout).toContain(NFD)
    expect(plain.stderr).toContain('E_CLUSTER')
  })

  it('audit --registry asks the live site registry (TLS, site CA)', async () => {
    serving = await serveBundle({
      bundle,
      host: '127.0.0.1',
      port: await freePort(),
      advertise: ['127.0.0.1'],
      stateDir: join(work, 'site'),
      sink: silentSink,
    })
    const registry = ['--registry', serving.url, '--ca-file', serving.caFile!]
    const res = await runCli(['audit', ...kube(), ...registry])
    expect(res.code).toBe(8)
    const audit = (res.error as unknown as AuditError).data.audit
    expect(audit.images.map((i) => [i.image, i.status, i.foundIn])).toEqual([
      [NFD, 'missing', []],
      ['docker.io/library/busybox:1.36', 'ok', ['registry']],
      ['docker.io/xiilab/astrago:core-v1', 'ok', ['registry']],
    ])

    // One namespace at a time: the installed one is clean.
    const scoped = await runCli(['audit', ...kube(), ...registry, '-n', 'astrago'])
    expect(scoped.error, scoped.stderr).toBeUndefined()
    expect(scoped.result).toMatchObject({ namespaces: ['astrago'], ok: 2, missing: 0 })

    // Without the site CA the registry is not trusted: a clear failure, not a false "missing".
    const untrusted = await runCli(['audit', ...kube(), '--registry', serving.url, '-n', 'astrago'])
    expect(untrusted.code).toBe(4)
    expect(untrusted.error?.code).toBe('E_REMOTE')

    // Images relocated to the site registry are checked by the upstream name after its prefix.
    const client = KubeClient.load({ kubeconfig: cp.kubeconfigPath })
    await client.apply(
      deployment('astrago', 'relocated', `${serving.registryHost}/docker.io/xiilab/astrago:core-v1`),
    )
    const relocated = await runCli(['audit', ...kube(), ...registry, '-n', 'astrago'])
    expect(relocated.error, relocated.stderr).toBeUndefined()
    const core = relocated.result.images.find((i: Image) => i.image === 'docker.io/xiilab/astrago:core-v1')
    expect(core.references).toEqual([
      `${serving.registryHost}/docker.io/xiilab/astrago:core-v1`,
      'docker.io/xiilab/astrago:core-v1',
    ])
    await client.delete({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: 'astrago',
      name: 'relocated',
    })

    // By digest: the bundle's digest resolves (in the lock and in the registry); any other digest does not.
    const reader = await BundleReader.open(bundle)
    const digest = reader.metadata.images.find((i) => i.name === 'docker.io/xiilab/astrago')!.digest
    await reader.close()
    const wrong = `sha256:${'0'.repeat(64)}`
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'pinned' } })
    await client.apply(deployment('pinned', 'right', `docker.io/xiilab/astrago@${digest}`))
    await client.apply(deployment('pinned', 'wrong', `docker.io/xiilab/astrago:core-v1@${wrong}`))
    for (const against of [registry, ['--bundle', bundle]]) {
      const pinned = await runCli(['audit', ...kube(), ...against, '-n', 'pinned'])
      expect(pinned.code).toBe(8)
      const images = (pinned.error as unknown as AuditError).data.audit.images
      expect(images.map((i) => [i.image, i.status])).toEqual([
        [`docker.io/xiilab/astrago:core-v1@${wrong}`, 'missing'],
        ['docker.io/library/busybox:1.36', 'ok'],
        [`docker.io/xiilab/astrago@${digest}`, 'ok'],
      ])
    }
  })

  it('install fails when its namespaces run an image the bundle lacks, unless --no-audit', async () => {
    const client = KubeClient.load({ kubeconfig: cp.kubeconfigPath })
    await client.apply(deployment('astrago', 'nfd-copy', NFD))
    const res = await runCli(['install', bundle, ...kube(), '--helm', helm, '--no-serve'])
    expect(res.code).toBe(8)
    const error = res.error as unknown as AuditError
    expect(error.code).toBe('E_CLUSTER')
    expect(error.message).toContain(NFD)
    expect(error.message).toContain('astrago/nfd-copy')
    expect(error.data.audit.missing).toBe(1)

    const skipped = await runCli(['install', bundle, ...kube(), '--helm', helm, '--no-serve', '--no-audit'])
    expect(skipped.error, skipped.stderr).toBeUndefined()
    expect(skipped.result.audit).toBeUndefined()
    expect(skipped.result.install).toMatchObject({ mode: 'unchanged' })
  })
})
