import { describe, expect, it } from 'vitest'
import { ImageCollector, isCustomResource, looksLikeImageRef } from '../../src/charts/discover-images.js'
import {
  normalizeDigest,
  parseRepoIndex,
  type RepoIndex,
  repoIndexUrl,
  resolveChartUrl,
  selectChartVersion,
} from '../../src/charts/repo-index.js'
import { buildRepoIndex, type RepoChart } from '../../src/charts/repo-writer.js'
import { closestVersions, compareVersions } from '../../src/charts/version.js'
import { AirgapError } from '../../src/errors.js'

function catchError(fn: () => unknown): AirgapError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(AirgapError)
    return error as AirgapError
  }
  throw new Error('expected an error')
}

const digest = (c: string) => c.repeat(64)

function indexText(versions: Record<string, string[]>): string {
  const lines = ['apiVersion: v1', 'entries:']
  for (const [name, list] of Object.entries(versions)) {
    lines.push(`  ${name}:`)
    for (const v of list) {
      lines.push(
        `  - apiVersion: v2`,
        `    name: ${name}`,
        `    version: "${v}"`,
        `    appVersion: "1.0"`,
        `    created: "2024-05-01T10:00:00.123456789Z"`,
        `    digest: ${digest('a')}`,
        `    urls:`,
        `    - ${name}-${v}.tgz`,
      )
    }
  }
  lines.push('generated: "2024-05-01T10:00:00Z"')
  return `${lines.join('\n')}\n`
}

describe('repository index: version selection', () => {
  const index: RepoIndex = parseRepoIndex(
    indexText({
      'csi-driver-nfs': ['v4.7.0', 'v4.6.0', 'v4.5.0'],
      'gpu-operator': ['24.9.0', '24.6.2', '24.6.1', '23.9.2'],
      prometheus: Array.from({ length: 30 }, (_, i) => `25.${i}.0`),
    }),
    'https://charts.example.com/stable',
  )

  it('picks the exact version, with its digest, urls and appVersion; created stays a string', () => {
    const entry = selectChartVersion(index, 'gpu-operator', '24.6.1')
    expect(entry).toMatchObject({
      name: 'gpu-operator',
      version: '24.6.1',
      appVersion: '1.0',
      urls: ['gpu-operator-24.6.1.tgz'],
      digest: digest('a'),
      created: '2024-05-01T10:00:00.123456789Z',
    })
  })

  it('ignores a leading "v" mismatch either way, as Helm does', () => {
    expect(selectChartVersion(index, 'csi-driver-nfs', '4.7.0').version).toBe('v4.7.0')
    expect(selectChartVersion(index, 'csi-driver-nfs', 'v4.6.0').version).toBe('v4.6.0')
    expect(selectChartVersion(index, 'gpu-operator', 'v24.9.0').version).toBe('24.9.0')
  })

  it('a missing version is E_REMOTE naming the repository and the closest versions, newest first', () => {
    const error = catchError(() => selectChartVersion(index, 'gpu-operator', '24.6.0'))
    expect(error.code).toBe('E_REMOTE')
    expect(error.message).toContain('https://charts.example.com/stable')
    expect(error.data?.available).toEqual(['24.9.0', '24.6.2', '24.6.1', '23.9.2'])
    expect(error.message).toContain('24.6.2')
  })

  it('lists at most 10 versions, the closest ones', () => {
    const error = catchError(() => selectChartVersion(index, 'prometheus', '25.12.1'))
    const available = error.data?.available as string[]
    expect(available).toHaveLength(10)
    expect(available).toContain('25.12.0')
    expect(available).not.toContain('25.29.0')
    expect([...available].sort((a, b) => compareVersions(b, a))).toEqual(available)
  })

  it('a missing chart is E_REMOTE naming the repository and similar names', () => {
    const error = catchError(() => selectChartVersion(index, 'gpu-operatr', '24.9.0'))
    expect(error.code).toBe('E_REMOTE')
    expect(error.message).toContain('https://charts.example.com/stable')
    expect(error.data?.similar).toEqual(['gpu-operator'])
  })

  it('refuses what is not a Helm index with E_REMOTE', () => {
    expect(catchError(() => parseRepoIndex('<!DOCTYPE html><html></html>', 'https://x.example')).code).toBe(
      'E_REMOTE',
    )
    expect(catchError(() => parseRepoIndex('just a string')).code).toBe('E_REMOTE')
    expect(catchError(() => parseRepoIndex('entries: {}')).code).toBe('E_REMOTE')
    expect(catchError(() => parseRepoIndex('apiVersion: v1\nentries: [1]')).code).toBe('E_REMOTE')
  })

  it('accepts an empty repository and skips invalid entries', () => {
    expect(parseRepoIndex('apiVersion: v1\nentries:\n').entries.size).toBe(0)
    const parsed = parseRepoIndex(
      'apiVersion: v1\nentries:\n  a:\n  - name: a\n  - version: 1.0.0\n    urls: [a.tgz]\n',
    )
    expect(parsed.entries.get('a')).toEqual([{ name: 'a', version: '1.0.0', urls: ['a.tgz'] }])
  })

  it('normalizes digests and drops malformed ones', () => {
    expect(normalizeDigest(`sha256:${digest('A')}`)).toBe(digest('a'))
    expect(normalizeDigest('abc')).toBeUndefined()
    expect(normalizeDigest(undefined)).toBeUndefined()
  })

  it('suggests the newest versions when the requested one is not semver', () => {
    expect(closestVersions('latest', ['1.0.0', '2.0.0', '1.5.0'], 2)).toEqual(['2.0.0', '1.5.0'])
  })
})

describe('repository index: URLs', () => {
  it('resolves relative chart URLs against the repository URL as a folder', () => {
    expect(resolveChartUrl('https://h.example/charts', 'a-1.0.0.tgz')).toBe(
      'https://h.example/charts/a-1.0.0.tgz',
    )
    expect(resolveChartUrl('https://h.example/charts/', 'a-1.0.0.tgz')).toBe(
      'https://h.example/charts/a-1.0.0.tgz',
    )
    expect(resolveChartUrl('https://h.example/charts', 'pkg/a-1.0.0.tgz')).toBe(
      'https://h.example/charts/pkg/a-1.0.0.tgz',
    )
    expect(resolveChartUrl('https://h.example/charts/stable', '../a.tgz')).toBe(
      'https://h.example/charts/a.tgz',
    )
    expect(resolveChartUrl('https://h.example/charts', '/abs/a.tgz')).toBe('https://h.example/abs/a.tgz')
    expect(resolveChartUrl('https://h.example', 'a.tgz')).toBe('https://h.example/a.tgz')
  })

  it('keeps absolute chart URLs and the repository query', () => {
    expect(resolveChartUrl('https://h.example/charts', 'https://cdn.example/x/a.tgz')).toBe(
      'https://cdn.example/x/a.tgz',
    )
    expect(resolveChartUrl('https://h.example/charts?sig=1', 'a.tgz')).toBe(
      'https://h.example/charts/a.tgz?sig=1',
    )
    expect(repoIndexUrl('https://h.example/charts/?sig=1')).toBe('https://h.example/charts/index.yaml?sig=1')
  })

  it('refuses a repository URL that is not http(s) with E_INPUT', () => {
    expect(catchError(() => resolveChartUrl('oci://r.example/charts', 'a.tgz')).code).toBe('E_INPUT')
    expect(catchError(() => repoIndexUrl('not a url')).code).toBe('E_INPUT')
  })
})

describe('repository index: writing', () => {
  const charts: RepoChart[] = [
    {
      name: 'gpu-operator',
      version: 'v24.9.0',
      appVersion: 'v24.9.0',
      digest: digest('1'),
      fileName: 'g-v24.9.0.tgz',
    },
    {
      name: 'astrago',
      version: '1.0.0',
      description: 'yes: "quoted"',
      digest: digest('2'),
      fileName: 'astrago.tgz',
    },
    { name: 'gpu-operator', version: 'v24.10.0', digest: digest('3'), fileName: 'g-v24.10.0.tgz' },
    {
      name: 'gpu-operator',
      version: '1.0',
      digest: digest('4'),
      fileName: 'g-1.0.tgz',
      created: '2024-01-01T00:00:00Z',
    },
  ]

  it('is deterministic: the same charts in any order give the same bytes', () => {
    const a = buildRepoIndex(charts)
    const b = buildRepoIndex([...charts].reverse())
    expect(b).toBe(a)
    expect(buildRepoIndex([...charts, charts[0]!])).toBe(a)
    expect(a).toContain('generated: "1970-01-01T00:00:00Z"')
  })

  it('sorts names, then versions newest first, and reads back as the same entries', () => {
    const index = parseRepoIndex(buildRepoIndex(charts))
    expect(index.apiVersion).toBe('v1')
    expect([...index.entries.keys()]).toEqual(['astrago', 'gpu-operator'])
    expect(index.entries.get('gpu-operator')!.map((e) => e.version)).toEqual(['v24.10.0', 'v24.9.0', '1.0'])
    expect(index.entries.get('astrago')![0]).toEqual({
      name: 'astrago',
      version: '1.0.0',
      apiVersion: 'v2',
      description: 'yes: "quoted"',
      digest: digest('2'),
      urls: ['astrago.tgz'],
    })
    expect(index.entries.get('gpu-operator')![2]!.created).toBe('2024-01-01T00:00:00Z')
  })

  it('refuses what Helm would not index with E_INPUT', () => {
    const one = charts[1]!
    expect(catchError(() => buildRepoIndex([{ ...one, version: 'latest' }])).code).toBe('E_INPUT')
    expect(catchError(() => buildRepoIndex([{ ...one, digest: 'abc' }])).code).toBe('E_INPUT')
    expect(catchError(() => buildRepoIndex([{ ...one, fileName: 'https://x/a.tgz' }])).code).toBe('E_INPUT')
    expect(catchError(() => buildRepoIndex([{ ...one, name: '__proto__' }])).code).toBe('E_INPUT')
    expect(catchError(() => buildRepoIndex([one, { ...one, digest: digest('9') }])).code).toBe('E_INPUT')
  })
})

describe('image collection rules', () => {
  it('tells full image references from bare names', () => {
    for (const ref of [
      'nginx:1.27',
      'nvcr.io/nvidia/driver',
      'localhost:5000/a/b',
      `a/b@sha256:${digest('f')}`,
    ]) {
      expect(looksLikeImageRef(ref), ref).toBe(true)
    }
    for (const ref of ['nginx', 'gpu-operator', 'library/busybox', 'Not An Image', '', 'a b:1']) {
      expect(looksLikeImageRef(ref), ref).toBe(false)
    }
  })

  it('knows custom resources from built-in kinds', () => {
    expect(isCustomResource('nvidia.com/v1')).toBe(true)
    expect(isCustomResource('monitoring.coreos.com/v1')).toBe(true)
    expect(isCustomResource('apps/v1')).toBe(false)
    expect(isCustomResource('v1')).toBe(false)
    expect(isCustomResource('networking.k8s.io/v1')).toBe(false)
  })

  it('walks lists, pod templates at any depth, image volumes and CR image fields, deduplicated and sorted', () => {
    const collector = new ImageCollector()
    collector.addDocuments(`
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p}
  spec:
    containers: [{name: a, image: "z/app:1"}]
    ephemeralContainers: [{name: debug, image: "busybox:1.36"}]
    volumes: [{name: models, image: {reference: "r.example/models:v1"}}]
---
apiVersion: example.com/v1
kind: Thing
metadata: {name: t}
spec:
  image: bare-name
  sidecar: {image: "z/app:1"}
  deep: {pods: [{template: {spec: {containers: [{name: c, image: busybox}]}}}]}
  driver: {repository: nvcr.io/nvidia/, image: driver, version: 550.54.15}
  pinned: {repository: nvcr.io/nvidia, image: x, version: "sha256:${digest('b')}"}
`)
    expect(collector.result()).toEqual([
      { ref: 'busybox', sources: ['Thing/t container c'] },
      { ref: 'busybox:1.36', sources: ['Pod/p ephemeralContainer debug'] },
      { ref: 'nvcr.io/nvidia/driver:550.54.15', sources: ['Thing/t spec.driver'] },
      { ref: `nvcr.io/nvidia/x@sha256:${digest('b')}`, sources: ['Thing/t spec.pinned'] },
      { ref: 'r.example/models:v1', sources: ['Pod/p volume models'] },
      { ref: 'z/app:1', sources: ['Pod/p container a', 'Thing/t spec.sidecar'] },
    ])
  })
})

describe('images an operator is told to run', () => {
  it('reads fully qualified images from container flags and *IMAGE* environment variables, not other values', () => {
    const collector = new ImageCollector()
    collector.addDocuments(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: prometheus-operator}
spec:
  template:
    spec:
      containers:
        - name: operator
          image: quay.io/prometheus-operator/prometheus-operator:v0.70.0
          args:
            - --prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.70.0
            - --kubelet-service=kube-system/kubelet
            - --web.listen-address=:8080
            - --log-level=info
            - --alertmanager-url=https://alertmanager.example.com:9093/api
          env:
            - {name: DRIVER_MANAGER_IMAGE, value: nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.8.0}
            - {name: BASE_URL, value: registry.example.com:5000/path}
            - {name: IMAGE_PULL_POLICY, value: IfNotPresent}
`)
    expect(collector.result()).toEqual([
      {
        ref: 'nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.8.0',
        sources: ['Deployment/prometheus-operator container operator env DRIVER_MANAGER_IMAGE'],
      },
      {
        ref: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.70.0',
        sources: ['Deployment/prometheus-operator container operator arg --prometheus-config-reloader'],
      },
      {
        ref: 'quay.io/prometheus-operator/prometheus-operator:v0.70.0',
        sources: ['Deployment/prometheus-operator container operator'],
      },
    ])
  })

  it('takes from an NVIDIA ClusterPolicy only what runs, and the driver as completed at run time', () => {
    const collector = new ImageCollector()
    collector.addDocuments(`
apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata: {name: cluster-policy}
spec:
  driver: {enabled: true, repository: nvcr.io/nvidia, image: driver, version: 550.144.03}
  toolkit: {enabled: true, repository: nvcr.io/nvidia/k8s, image: container-toolkit, version: v1.17.8-ubuntu20.04}
  dcgm: {enabled: false, repository: nvcr.io/nvidia/cloud-native, image: dcgm, version: 4.2.3-1-ubuntu22.04}
  sandboxWorkloads: {enabled: false}
  vfioManager: {enabled: true, repository: nvcr.io/nvidia, image: cuda, version: 12.8.1-base-ubi9}
`)
    expect(collector.result().map((i) => i.ref)).toEqual([
      'nvcr.io/nvidia/k8s/container-toolkit:v1.17.8-ubuntu20.04',
    ])
    expect(collector.completedAtRunTime()).toEqual([
      { ref: 'nvcr.io/nvidia/driver:550.144.03', sources: ['ClusterPolicy/cluster-policy spec.driver'] },
    ])
    const sandbox = new ImageCollector()
    sandbox.addDocuments(`
apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata: {name: cluster-policy}
spec:
  sandboxWorkloads: {enabled: true}
  vfioManager: {enabled: true, repository: nvcr.io/nvidia, image: cuda, version: 12.8.1-base-ubi9}
`)
    expect(sandbox.result().map((i) => i.ref)).toEqual(['nvcr.io/nvidia/cuda:12.8.1-base-ubi9'])
  })
})
