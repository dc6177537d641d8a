import * as k8s from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AirgapError } from '../../../src/errors.js'
import { Task } from '../../../src/events/tasks.js'
import { silentSink } from '../../../src/events/types.js'
import type { Diagnosis } from '../../../src/stages/diagnose.js'
import { KubeClient } from '../../../src/stages/kube-client.js'
import type { ReadinessRule } from '../../../src/stages/load-stages.js'
import { waitForReady } from '../../../src/stages/wait.js'
import { createClusterPolicyCrd, setClusterPolicyState } from '../../support/gpu-operator.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'

/**
 * The gpu stage's readiness rule (manifests/astrago/gpu/stage.yaml): the NVIDIA ClusterPolicy's status.state must be
 * `ready`. Against the harness API server, the test plays the GPU Operator: it creates the ClusterPolicy CRD and
 * object and sets the status part-way (the wait passes), or leaves it notReady with an operand DaemonSet whose pod
 * cannot be scheduled (the wait times out naming that operand, its pod and the pod's events, and not the ready one).
 */
const RULE: ReadinessRule = {
  apiVersion: 'nvidia.com/v1',
  kind: 'ClusterPolicy',
  name: 'cluster-policy',
  jsonPath: '{.status.state}',
  equals: 'ready',
  source: 'manifests/gpu/stage.yaml',
}

function operand(name: string, owner: { uid: string }, cpu: string): k8s.V1DaemonSet {
  const labels = { app: name }
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: {
      name,
      namespace: 'gpu-operator',
      labels,
      ownerReferences: [
        {
          apiVersion: 'nvidia.com/v1',
          kind: 'ClusterPolicy',
          name: 'cluster-policy',
          uid: owner.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          nodeSelector: { 'nvidia.com/gpu.present': 'true' },
          tolerations: [{ operator: 'Exists' }],
          containers: [{ name: 'main', image: `nvcr.io/nvidia/${name}:1`, resources: { requests: { cpu } } }],
        },
      },
    },
  }
}

describe('waiting for a custom resource field, with its operands diagnosed', () => {
  let cp: ControlPlane
  let client: KubeClient
  let custom: k8s.CustomObjectsApi
  let apps: k8s.AppsV1Api

  let kc: k8s.KubeConfig
  const setState = (state: string) => setClusterPolicyState(kc, state)

  const wait = (seconds: number) =>
    waitForReady([{ ref: { apiVersion: RULE.apiVersion, kind: RULE.kind, name: RULE.name }, rule: RULE }], {
      client,
      stage: 'gpu',
      deadline: Date.now() + seconds * 1000,
      timeoutMs: seconds * 1000,
      task: new Task(silentSink, 'stage.check', 'gpu'),
    })

  beforeAll(async () => {
    cp = await startControlPlane()
    client = KubeClient.load({ kubeconfig: cp.kubeconfigPath })
    kc = new k8s.KubeConfig()
    kc.loadFromFile(cp.kubeconfigPath)
    custom = kc.makeApiClient(k8s.CustomObjectsApi)
    apps = kc.makeApiClient(k8s.AppsV1Api)
    await createClusterPolicyCrd(kc)
    await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: 'gpu-operator' } } })
  }, 180_000)

  afterAll(async () => {
    await cp?.stop()
  })

  it('passes once the operator sets status.state to ready part-way through the wait', async () => {
    await custom.createClusterCustomObject({
      group: 'nvidia.com',
      version: 'v1',
      plural: 'clusterpolicies',
      body: {
        apiVersion: 'nvidia.com/v1',
        kind: 'ClusterPolicy',
        metadata: { name: 'cluster-policy' },
        spec: {},
      },
    })
    await setState('notReady')
    const started = Date.now()
    const waiting = wait(60)
    let settled = false
    waiting.then(
      () => {
        settled = true
      },
      () => {
        settled = true
      },
    )
    await new Promise((r) => setTimeout(r, 1500))
    expect(settled).toBe(false)
    await setState('ready')
    await waiting
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500)
  }, 90_000)

  it('times out naming the ClusterPolicy state and the operand DaemonSet that is not ready, with its pod events', async () => {
    await setState('notReady')
    const policy = (await custom.getClusterCustomObject({
      group: 'nvidia.com',
      version: 'v1',
      plural: 'clusterpolicies',
      name: 'cluster-policy',
    })) as { metadata: { uid: string } }
    // The driver's pod asks for more CPU than any node has: it stays Pending (FailedScheduling). The exporter is ready.
    await apps.createNamespacedDaemonSet({
      namespace: 'gpu-operator',
      body: operand('nvidia-driver-daemonset', policy.metadata, '1000'),
    })
    await apps.createNamespacedDaemonSet({
      namespace: 'gpu-operator',
      body: operand('nvidia-dcgm-exporter', policy.metadata, '10m'),
    })
    // Wait until the controllers have acted: the exporter's pod ready, the driver's pod created and refused.
    for (let i = 0; ; i++) {
      const exporter = await apps.readNamespacedDaemonSet({
        name: 'nvidia-dcgm-exporter',
        namespace: 'gpu-operator',
      })
      const driver = await apps.readNamespacedDaemonSet({
        name: 'nvidia-driver-daemonset',
        namespace: 'gpu-operator',
      })
      if ((exporter.status?.numberReady ?? 0) >= 1 && (driver.status?.desiredNumberScheduled ?? 0) >= 1) break
      if (i > 300) throw new Error('the operand DaemonSets did not settle')
      await new Promise((r) => setTimeout(r, 200))
    }

    const error = await wait(8).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(AirgapError)
    const failure = error as AirgapError
    expect(failure.code).toBe('E_CLUSTER')
    expect(failure.message).toContain('ClusterPolicy cluster-policy did not become ready')
    expect(failure.message).toContain('notReady')
    expect(failure.message).toContain('DaemonSet gpu-operator/nvidia-driver-daemonset')
    expect(failure.message).toMatch(/pod gpu-operator\/nvidia-driver-daemonset-\S+ \(Pending\)/)
    expect(failure.message).toContain('FailedScheduling')
    expect(failure.message).not.toContain('nvidia-dcgm-exporter')
    const owned = failure.data?.owned as Diagnosis[]
    expect(owned.map((o) => o.object.name)).toEqual(['nvidia-driver-daemonset'])
    expect(owned[0]?.pods[0]?.events.map((e) => e.reason)).toContain('FailedScheduling')
  }, 120_000)
})
