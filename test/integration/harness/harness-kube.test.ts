import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import * as k8s from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChart, helm } from '../../support/charts.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { waitFor } from '../../support/net.js'

const run = promisify(execFile)
const fieldManager = 'astrago-airgap-test'
const pinned = /^KUBERNETES_VERSION=(\S+)$/m.exec(
  readFileSync(new URL('../../../scripts/tool-versions.env', import.meta.url), 'utf8'),
)?.[1]

describe('test harness: real Kubernetes control plane with kwok nodes', () => {
  let cp: ControlPlane
  let kc: k8s.KubeConfig
  let apps: k8s.AppsV1Api
  let core: k8s.CoreV1Api
  let batch: k8s.BatchV1Api
  let objects: k8s.KubernetesObjectApi
  let scratch: string
  let helmHome: string

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'harness-kube-test-'))
    helmHome = join(scratch, 'helm-home')
    cp = await startControlPlane()
    console.log(`control plane ${cp.version} started in ${cp.startupMs} ms at ${cp.server} (${cp.workDir})`)
    kc = new k8s.KubeConfig()
    kc.loadFromFile(cp.kubeconfigPath)
    apps = kc.makeApiClient(k8s.AppsV1Api)
    core = kc.makeApiClient(k8s.CoreV1Api)
    batch = kc.makeApiClient(k8s.BatchV1Api)
    objects = k8s.KubernetesObjectApi.makeApiClient(kc)
  })

  afterAll(async () => {
    await cp?.stop()
    if (scratch) await rm(scratch, { recursive: true, force: true })
  })

  const apply = <T extends k8s.KubernetesObject>(object: T) =>
    objects.patch(object, undefined, undefined, fieldManager, true, k8s.PatchStrategy.ServerSideApply)

  const describeDeployment = async (namespace: string, name: string) => {
    const d = await apps.readNamespacedDeployment({ namespace, name }).catch((e: Error) => e.message)
    const pods = await core.listNamespacedPod({ namespace }).catch(() => undefined)
    return `deployment: ${JSON.stringify(typeof d === 'string' ? d : d.status)}\npods: ${JSON.stringify(
      pods?.items.map((p) => ({ name: p.metadata?.name, node: p.spec?.nodeName, phase: p.status?.phase })),
    )}`
  }

  async function waitAvailable(namespace: string, name: string, replicas: number): Promise<k8s.V1Deployment> {
    let last: k8s.V1Deployment | undefined
    await waitFor(
      `deployment ${namespace}/${name} to be Available with ${replicas} ready replicas`,
      async () => {
        last = await apps.readNamespacedDeployment({ namespace, name })
        const available = last.status?.conditions?.find((c) => c.type === 'Available')?.status === 'True'
        return (
          available && last.status?.readyReplicas === replicas && last.status?.updatedReplicas === replicas
        )
      },
      { timeoutMs: 60_000, intervalMs: 250, describe: () => JSON.stringify(last?.status) },
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await describeDeployment(namespace, name)}`)
    })
    return last!
  }

  async function expectPodsRunningOnKwokNodes(namespace: string, labelSelector: string, count: number) {
    const pods = (await core.listNamespacedPod({ namespace, labelSelector })).items
    expect(pods).toHaveLength(count)
    for (const pod of pods) {
      expect(cp.nodes).toContain(pod.spec?.nodeName)
      expect(pod.status?.phase).toBe('Running')
      expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True')
      expect(pod.status?.podIP).toMatch(/^10\.244\.\d+\.\d+$/)
      expect(pod.status?.containerStatuses?.every((s) => s.ready && s.state?.running)).toBe(true)
    }
    return pods
  }

  it('runs the pinned Kubernetes version with three Ready kwok nodes', async () => {
    expect(pinned).toBeDefined()
    expect(cp.version).toBe(pinned)
    expect(cp.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(existsSync(cp.kubeconfigPath)).toBe(true)
    const nodes = (await core.listNode()).items
    expect(nodes.map((n) => n.metadata?.name).sort()).toEqual(['kwok-node-0', 'kwok-node-1', 'kwok-node-2'])
    for (const node of nodes) {
      expect(node.metadata?.annotations?.['kwok.x-k8s.io/node']).toBe('fake')
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True')
      expect(node.spec?.taints ?? []).toEqual([])
      expect(node.status?.nodeInfo?.kubeletVersion).toBe(cp.version)
    }
    // The controller-manager's service-account controller has run.
    const sa = await core.readNamespacedServiceAccount({ namespace: 'default', name: 'default' })
    expect(sa.metadata?.name).toBe('default')
  })

  it('makes a server-side applied Deployment Available on kwok nodes', async () => {
    const deployment: k8s.V1Deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'demo', namespace: 'default', labels: { app: 'demo' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'demo' } },
        template: {
          metadata: { labels: { app: 'demo' } },
          spec: { containers: [{ name: 'app', image: 'registry.example/demo/app:1.0' }] },
        },
      },
    }
    const applied = await apply(deployment)
    expect(
      applied.metadata?.managedFields?.some((f) => f.manager === fieldManager && f.operation === 'Apply'),
    ).toBe(true)

    const available = await waitAvailable('default', 'demo', 2)
    expect(available.status?.availableReplicas).toBe(2)
    const pods = await expectPodsRunningOnKwokNodes('default', 'app=demo', 2)
    for (const pod of pods) expect(pod.spec?.containers[0]?.image).toBe('registry.example/demo/app:1.0')
    // The ServiceAccount admission plugin gave the pods the namespace's default service account.
    expect(pods.every((p) => p.spec?.serviceAccountName === 'default')).toBe(true)
  })

  it('installs a generated chart with the real helm --wait, with its images overridden', async () => {
    const chart = await createChart(scratch, {
      name: 'demo-web',
      version: '0.1.0',
      appVersion: '2.1',
      images: ['registry.example/demo/web:2.1', 'registry.example/demo/sidecar:0.3'],
      replicas: 2,
    })
    expect(chart).toBe(join(scratch, 'demo-web-0.1.0.tgz'))
    const kube = ['--kubeconfig', cp.kubeconfigPath, '--namespace', 'apps']
    await helm(
      [
        'install',
        'web',
        chart,
        ...kube,
        '--create-namespace',
        '--set',
        'global.imageRegistry=registry.airgap.local:5000',
        '--wait',
        '--timeout',
        '2m',
      ],
      { home: helmHome },
    )

    const releases = JSON.parse((await helm(['list', '-o', 'json', ...kube], { home: helmHome })).stdout) as {
      name: string
      namespace: string
      status: string
      chart: string
      app_version: string
    }[]
    expect(releases).toEqual([
      expect.objectContaining({
        name: 'web',
        namespace: 'apps',
        status: 'deployed',
        chart: 'demo-web-0.1.0',
        app_version: '2.1',
      }),
    ])

    const deployment = await waitAvailable('apps', 'web-demo-web', 2)
    expect(deployment.spec?.template.spec?.containers.map((c) => [c.name, c.image])).toEqual([
      ['sidecar', 'registry.airgap.local:5000/demo/sidecar:0.3'],
      ['web', 'registry.airgap.local:5000/demo/web:2.1'],
    ])
    await expectPodsRunningOnKwokNodes('apps', 'app.kubernetes.io/instance=web', 2)
  })

  it('runs a chart Job to completion (kwok completes Job pods)', async () => {
    const chart = await createChart(scratch, {
      name: 'demo-job',
      version: '1.0.0',
      images: ['registry.example/demo/migrate:1.0'],
      kind: 'Job',
    })
    await helm(
      [
        'install',
        'migrate',
        chart,
        '--kubeconfig',
        cp.kubeconfigPath,
        '--namespace',
        'default',
        '--wait',
        '--wait-for-jobs',
        '--timeout',
        '2m',
      ],
      { home: helmHome },
    )
    const job = await batch.readNamespacedJob({ namespace: 'default', name: 'migrate-demo-job' })
    expect(job.status?.succeeded).toBe(1)
    expect(job.status?.conditions?.find((c) => c.type === 'Complete')?.status).toBe('True')
  })

  it('has a GPU node with its label and nvidia.com/gpu capacity, where GPU pods are scheduled', async () => {
    const gpuNode = await core.readNode({ name: 'kwok-node-1' })
    expect(gpuNode.metadata?.labels?.['nvidia.com/gpu.present']).toBe('true')
    expect(gpuNode.status?.capacity?.['nvidia.com/gpu']).toBe('8')
    expect(gpuNode.status?.allocatable?.['nvidia.com/gpu']).toBe('8')
    for (const name of ['kwok-node-0', 'kwok-node-2']) {
      const node = await core.readNode({ name })
      expect(node.metadata?.labels?.['nvidia.com/gpu.present']).toBeUndefined()
      expect(node.status?.capacity?.['nvidia.com/gpu']).toBeUndefined()
    }

    const pod: k8s.V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'gpu-job', namespace: 'default' },
      spec: {
        containers: [
          {
            name: 'cuda',
            image: 'registry.example/demo/cuda:12',
            resources: { limits: { 'nvidia.com/gpu': '2' } },
          },
        ],
      },
    }
    await apply(pod)
    let last: k8s.V1Pod | undefined
    await waitFor(
      'the GPU pod to run',
      async () => {
        last = await core.readNamespacedPod({ namespace: 'default', name: 'gpu-job' })
        return last.status?.phase === 'Running'
      },
      { timeoutMs: 60_000, describe: () => JSON.stringify(last?.status) },
    )
    expect(last?.spec?.nodeName).toBe('kwok-node-1')
  })

  it('stop() ends every component and removes its work directory', async () => {
    const { workDir, pids } = cp
    expect(Object.keys(pids).sort()).toEqual([
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-scheduler',
      'kwok',
    ])
    const before = await pgrep(workDir)
    expect(before.sort()).toEqual(Object.values(pids).sort())

    const started = Date.now()
    await cp.stop()
    console.log(`control plane stopped in ${Date.now() - started} ms`)

    expect(await pgrep(workDir)).toEqual([])
    for (const pid of Object.values(pids)) expect(alive(pid)).toBe(false)
    if (process.env.KEEP_HARNESS !== '1') expect(existsSync(workDir)).toBe(false)
  })
})

/** Pids of the processes whose command line mentions `text` (pgrep exits 1 when there are none). */
async function pgrep(text: string): Promise<number[]> {
  try {
    const { stdout } = await run('pgrep', ['-f', text])
    return stdout.split('\n').filter(Boolean).map(Number)
  } catch (error) {
    if ((error as { code?: number }).code === 1) return []
    throw error
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
