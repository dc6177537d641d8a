import { describe, expect, it } from 'vitest'
import {
  checkRepositoryPath,
  normalizeRegistryHost,
  parseRefName,
  qualifyName,
  RepositoryNames,
} from '../../src/serve/registry-names.js'

const names = () =>
  new RepositoryNames([
    'docker.io/library/nginx',
    'docker.io/nvidia/cuda',
    'nvcr.io/nvidia/cuda',
    'nvcr.io/nvidia/k8s-device-plugin',
    'quay.io/prometheus/node-exporter',
    'ghcr.io/prometheus/node-exporter',
    'registry.k8s.io/pause',
    'localhost:5000/site/app',
    'charts/worker',
    'site/tools',
  ])

describe('registry names', () => {
  it('takes a path that starts with a host as the full name', () => {
    const n = names()
    expect(n.resolve('docker.io/library/nginx')).toEqual({ kind: 'found', name: 'docker.io/library/nginx' })
    expect(n.resolve('nvcr.io/nvidia/cuda')).toEqual({ kind: 'found', name: 'nvcr.io/nvidia/cuda' })
    expect(n.resolve('docker.io/nvidia/cuda')).toEqual({ kind: 'found', name: 'docker.io/nvidia/cuda' })
    expect(n.resolve('localhost:5000/site/app')).toEqual({ kind: 'found', name: 'localhost:5000/site/app' })
    // Docker Hub's aliases and one-part names are normalized as Docker does.
    expect(n.resolve('index.docker.io/library/nginx')).toEqual({
      kind: 'found',
      name: 'docker.io/library/nginx',
    })
    expect(n.resolve('docker.io/nginx')).toEqual({ kind: 'found', name: 'docker.io/library/nginx' })
    // A qualified name that is not there is new (a push creates it), never another upstream's.
    expect(n.resolve('quay.io/nvidia/cuda')).toEqual({ kind: 'new', name: 'quay.io/nvidia/cuda' })
  })

  it('puts containerd ?ns= in front of the path, so the same upstream path on two hosts never collides', () => {
    const n = names()
    expect(n.resolve('library/nginx', 'docker.io')).toEqual({
      kind: 'found',
      name: 'docker.io/library/nginx',
    })
    expect(n.resolve('nginx', 'docker.io')).toEqual({ kind: 'found', name: 'docker.io/library/nginx' })
    expect(n.resolve('library/nginx', 'registry-1.docker.io')).toEqual({
      kind: 'found',
      name: 'docker.io/library/nginx',
    })
    expect(n.resolve('nvidia/cuda', 'nvcr.io')).toEqual({ kind: 'found', name: 'nvcr.io/nvidia/cuda' })
    expect(n.resolve('nvidia/cuda', 'docker.io')).toEqual({ kind: 'found', name: 'docker.io/nvidia/cuda' })
    expect(n.resolve('pause', 'registry.k8s.io')).toEqual({ kind: 'found', name: 'registry.k8s.io/pause' })
    // ns names the upstream: a path only another host has is not found under it.
    expect(n.resolve('nvidia/k8s-device-plugin', 'docker.io')).toEqual({
      kind: 'new',
      name: 'docker.io/nvidia/k8s-device-plugin',
    })
    // A path that already carries its host keeps it.
    expect(n.resolve('nvcr.io/nvidia/cuda', 'docker.io')).toEqual({
      kind: 'found',
      name: 'nvcr.io/nvidia/cuda',
    })
    expect(n.resolve('library/nginx', 'not a host')).toMatchObject({ kind: 'invalid' })
  })

  it('resolves an unqualified path: exact name first, then Docker Hub, then the only upstream that has it', () => {
    const n = names()
    expect(n.resolve('charts/worker')).toEqual({ kind: 'found', name: 'charts/worker' })
    expect(n.resolve('site/tools')).toEqual({ kind: 'found', name: 'site/tools' })
    expect(n.resolve('library/nginx')).toEqual({ kind: 'found', name: 'docker.io/library/nginx' })
    expect(n.resolve('nginx')).toEqual({ kind: 'found', name: 'docker.io/library/nginx' })
    // Both docker.io and nvcr.io have nvidia/cuda: unqualified means Docker Hub, as for every Docker client.
    expect(n.resolve('nvidia/cuda')).toEqual({ kind: 'found', name: 'docker.io/nvidia/cuda' })
    // Only nvcr.io has it.
    expect(n.resolve('nvidia/k8s-device-plugin')).toEqual({
      kind: 'found',
      name: 'nvcr.io/nvidia/k8s-device-plugin',
    })
    expect(n.resolve('pause')).toEqual({ kind: 'found', name: 'registry.k8s.io/pause' })
    // Two upstreams other than Docker Hub have it: ambiguous, with the candidates.
    expect(n.resolve('prometheus/node-exporter')).toEqual({
      kind: 'ambiguous',
      candidates: ['ghcr.io/prometheus/node-exporter', 'quay.io/prometheus/node-exporter'],
    })
    // Nobody has it: a new repository of exactly that name.
    expect(n.resolve('team/new-app')).toEqual({ kind: 'new', name: 'team/new-app' })
  })

  it('learns names added later (pushes) and lists them in catalog order', () => {
    const n = new RepositoryNames(['nvcr.io/nvidia/cuda'])
    expect(n.resolve('nvidia/cuda')).toEqual({ kind: 'found', name: 'nvcr.io/nvidia/cuda' })
    n.add('docker.io/nvidia/cuda')
    expect(n.resolve('nvidia/cuda')).toEqual({ kind: 'found', name: 'docker.io/nvidia/cuda' })
    n.add('charts/a')
    n.add('charts/a')
    expect(n.list()).toEqual(['charts/a', 'docker.io/nvidia/cuda', 'nvcr.io/nvidia/cuda'])
  })

  it('rejects paths that are not repository names', () => {
    expect(checkRepositoryPath('docker.io/library/nginx')).toBeUndefined()
    expect(checkRepositoryPath('a/b__c/d-e.f')).toBeUndefined()
    expect(checkRepositoryPath('')).toMatch(/empty/)
    expect(checkRepositoryPath('Library/nginx')).toMatch(/Library/)
    expect(checkRepositoryPath('a//b')).toMatch(/path component/)
    expect(checkRepositoryPath('a/-b')).toMatch(/-b/)
    expect(checkRepositoryPath('bad_host.io:x/a')).toMatch(/registry host/)
    expect(checkRepositoryPath(`a/${'b'.repeat(300)}`)).toMatch(/255/)
    expect(new RepositoryNames().resolve('a/../b')).toMatchObject({ kind: 'invalid' })
  })

  it('splits the ref.name annotations of the bundle index', () => {
    expect(parseRefName('docker.io/library/nginx:1.27')).toEqual({
      repository: 'docker.io/library/nginx',
      tag: '1.27',
    })
    expect(parseRefName('localhost:5000/app:v1')).toEqual({ repository: 'localhost:5000/app', tag: 'v1' })
    expect(parseRefName('localhost:5000/app')).toEqual({ repository: 'localhost:5000/app' })
    expect(parseRefName('charts/worker:0.1.0')).toEqual({ repository: 'charts/worker', tag: '0.1.0' })
    expect(parseRefName(`quay.io/x/y@sha256:${'a'.repeat(64)}`)).toEqual({
      repository: 'quay.io/x/y',
      digest: `sha256:${'a'.repeat(64)}`,
    })
  })

  it('normalizes Docker Hub hosts only', () => {
    expect(normalizeRegistryHost('INDEX.docker.io')).toBe('docker.io')
    expect(normalizeRegistryHost('nvcr.io')).toBe('nvcr.io')
    expect(qualifyName('docker.io', 'busybox')).toBe('docker.io/library/busybox')
    expect(qualifyName('quay.io', 'busybox')).toBe('quay.io/busybox')
  })
})
