import { describe, expect, it } from 'vitest'
import { collectImages, normalizeImage } from '../../src/audit/audit-images.js'

describe('audit: image references in the cluster', () => {
  it('normalizes references as Docker does, and reads site copies back to their upstream names', () => {
    expect(normalizeImage('nginx:1.27').key).toBe('docker.io/library/nginx:1.27')
    expect(
      normalizeImage('harbor.site:443/astrago/nvcr.io/nvidia/cuda:12', ['harbor.site:443/astrago']).key,
    ).toBe('nvcr.io/nvidia/cuda:12')
    expect(
      normalizeImage('harbor.site/astrago/registry.corp_5000/team/app:1', ['harbor.site/astrago']).key,
    ).toBe('registry.corp:5000/team/app:1')
    expect(normalizeImage('Not A Ref').invalid).toMatch(/not a valid image reference/)
  })

  it('collects images of pods and pod templates, reporting a controller once instead of its pods', () => {
    const podSpec = {
      containers: [{ name: 'worker', image: 'registry.k8s.io/nfd/node-feature-discovery:v0.17.3' }],
    }
    const uses = collectImages([
      {
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: 'nfd-worker', namespace: 'gpu-operator', uid: 'ds-1' },
        spec: { template: { spec: podSpec } },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'nfd-worker-abcde',
          namespace: 'gpu-operator',
          ownerReferences: [{ kind: 'DaemonSet', name: 'nfd-worker', uid: 'ds-1', controller: true }],
        },
        spec: podSpec,
      },
      {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: { name: 'exporter', namespace: 'gpu-operator' },
        spec: {
          jobTemplate: {
            spec: {
              template: { spec: { initContainers: [{ name: 'init', image: 'busybox' }], containers: [] } },
            },
          },
        },
      },
    ])
    const nfd = uses.get('registry.k8s.io/nfd/node-feature-discovery:v0.17.3')
    expect(nfd).toBeDefined()
    expect([...nfd!.workloads.keys()]).toEqual(['DaemonSet/gpu-operator/nfd-worker'])
    expect([...nfd!.workloads.values()][0]!.containers).toEqual(['worker'])
    expect(uses.has('docker.io/library/busybox:latest')).toBe(true)
  })

  it('leaves out the ReplicaSets a Deployment keeps from earlier rollouts, scaled to zero: they run no pod', () => {
    const template = (image: string) => ({ template: { spec: { containers: [{ name: 'app', image }] } } })
    const owned = { ownerReferences: [{ kind: 'Deployment', name: 'app', uid: 'd-1', controller: true }] }
    const uses = collectImages([
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'app', namespace: 'site', uid: 'd-1' },
        spec: { replicas: 1, ...template('app:1.1') },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: { name: 'app-new', namespace: 'site', uid: 'rs-2', ...owned },
        spec: { replicas: 1, ...template('app:1.1') },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: { name: 'app-old', namespace: 'site', uid: 'rs-1', ...owned },
        spec: { replicas: 0, ...template('app:1.0') },
      },
      // A ReplicaSet of its own, scaled to zero, is still a workload someone may scale up: it stays.
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: { name: 'standalone', namespace: 'site', uid: 'rs-3' },
        spec: { replicas: 0, ...template('tool:2') },
      },
    ])
    expect([...uses.keys()].sort()).toEqual(['docker.io/library/app:1.1', 'docker.io/library/tool:2'])
  })
})
