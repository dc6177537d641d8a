import { describe, expect, it } from 'vitest'
import { parsePushTarget, siteChartRepository, siteReference, siteRepository } from '../../src/push/target.js'

describe('push target', () => {
  it('reads host:port, URLs and a prefix', () => {
    expect(parsePushTarget('harbor.site:443', 'astrago')).toEqual({
      target: { registry: 'harbor.site:443', prefix: 'astrago' },
      plainHttp: false,
    })
    expect(parsePushTarget('http://10.0.0.5:5000/')).toEqual({
      target: { registry: '10.0.0.5:5000' },
      plainHttp: true,
    })
    expect(parsePushTarget('https://harbor.site/v2/astrago', 'v1').target).toEqual({
      registry: 'harbor.site',
      prefix: 'astrago/v1',
    })
  })

  it.each([
    ['bad host!', undefined, /not a registry host/],
    ['harbor.site', 'Astrago', /not a valid repository path component/],
    ['harbor.site', 'a//b/', /not a valid repository path component/],
  ])('refuses %j with prefix %j', (registry, prefix, pattern) => {
    expect(() => parsePushTarget(registry, prefix)).toThrow(pattern)
  })

  it('keeps the full original name under the prefix, so upstreams never collide', () => {
    const target = { registry: 'harbor.site:443', prefix: 'astrago' }
    expect(siteReference(target, 'docker.io/nvidia/cuda', '12.8.1')).toBe(
      'harbor.site:443/astrago/docker.io/nvidia/cuda:12.8.1',
    )
    expect(siteReference(target, 'nvcr.io/nvidia/cuda', '12.8.1')).toBe(
      'harbor.site:443/astrago/nvcr.io/nvidia/cuda:12.8.1',
    )
    expect(siteReference(target, 'quay.io/a/b', `sha256:${'1'.repeat(64)}`)).toBe(
      `harbor.site:443/astrago/quay.io/a/b@sha256:${'1'.repeat(64)}`,
    )
    expect(siteRepository(target, 'registry.corp:5000/team/app')).toBe('astrago/registry.corp_5000/team/app')
    expect(siteRepository({ registry: 'r' }, 'docker.io/library/nginx')).toBe('docker.io/library/nginx')
    expect(siteChartRepository(target, 'gpu-operator')).toBe('astrago/charts/gpu-operator')
  })
})
