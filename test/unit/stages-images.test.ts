import { describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import { imagesOf, relocateImage, rewriteImages } from '../../src/stages/images.js'

const podSpec = {
  initContainers: [{ name: 'init', image: 'busybox:1.36' }],
  containers: [
    { name: 'app', image: 'docker.io/library/nginx:1.27' },
    { name: 'gpu', image: `nvcr.io/nvidia/cuda:12.8.1-base@sha256:${'a'.repeat(64)}` },
  ],
  ephemeralContainers: [{ name: 'debug', image: 'ghcr.io/org/debug:1' }],
}

describe('image relocation', () => {
  it('puts the full upstream name under the site registry', () => {
    expect(relocateImage('docker.io/library/nginx:1.27', 'harbor.site:8443')).toBe(
      'harbor.site:8443/docker.io/library/nginx:1.27',
    )
    expect(relocateImage('nginx', 'harbor.site')).toBe('harbor.site/docker.io/library/nginx:latest')
    expect(relocateImage(`quay.io/a/b@sha256:${'b'.repeat(64)}`, 'r.local/')).toBe(
      `r.local/quay.io/a/b@sha256:${'b'.repeat(64)}`,
    )
    // Already relocated, or not an image reference: left as is.
    expect(relocateImage('harbor.site/docker.io/library/nginx:1.27', 'harbor.site')).toBe(
      'harbor.site/docker.io/library/nginx:1.27',
    )
    expect(relocateImage('$(IMAGE)', 'harbor.site')).toBe('$(IMAGE)')
  })

  it('rewrites containers, initContainers and ephemeralContainers of every workload kind', () => {
    const workloads = [
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: structuredClone(podSpec) },
      ...['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'ReplicationController'].map(
        (kind) => ({
          apiVersion: 'apps/v1',
          kind,
          metadata: { name: 'w' },
          spec: { template: { spec: structuredClone(podSpec) } },
        }),
      ),
      {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: { name: 'c' },
        spec: { jobTemplate: { spec: { template: { spec: structuredClone(podSpec) } } } },
      },
      {
        apiVersion: 'v1',
        kind: 'PodTemplate',
        metadata: { name: 't' },
        template: { spec: structuredClone(podSpec) },
      },
    ]
    for (const workload of workloads) {
      const before = JSON.stringify(workload)
      const { object, rewritten } = rewriteImages(workload, 'harbor.site')
      expect(imagesOf(object), workload.kind).toEqual([
        'harbor.site/docker.io/library/busybox:1.36',
        'harbor.site/docker.io/library/nginx:1.27',
        `harbor.site/nvcr.io/nvidia/cuda:12.8.1-base@sha256:${'a'.repeat(64)}`,
        'harbor.site/ghcr.io/org/debug:1',
      ])
      expect(rewritten).toHaveLength(4)
      expect(JSON.stringify(workload), 'the input is not modified').toBe(before)
    }
  })

  it('leaves other kinds alone', () => {
    const widget = {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w' },
      spec: { image: 'nginx' },
    }
    expect(rewriteImages(widget, 'harbor.site')).toEqual({ object: widget, rewritten: [] })
    expect(imagesOf(widget)).toEqual([])
  })
})

describe('an image that cannot be relocated', () => {
  it('is an E_INPUT error naming the object, the container and the value, not silently left alone', () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'apps' },
      spec: { template: { spec: { containers: [{ name: 'main', image: 'Not A/Reference!' }] } } },
    }
    let error: unknown
    try {
      rewriteImages(deployment, 'harbor.site')
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_INPUT')
    expect((error as AirgapError).message).toContain('Deployment apps/web')
    expect((error as AirgapError).message).toContain('"Not A/Reference!"')
    expect((error as AirgapError).message).toContain('"main"')
  })
})
