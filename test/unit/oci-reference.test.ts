import { describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import { formatImageReference, parseImageReference, registryEndpointHost } from '../../src/oci/reference.js'

const D = `sha256:${'a'.repeat(64)}`

describe('parseImageReference', () => {
  it.each([
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.27.0-alpine3.19', 'docker.io/library/nginx:1.27.0-alpine3.19'],
    [
      'bitnamilegacy/postgresql:16.1.0-debian-11-r9',
      'docker.io/bitnamilegacy/postgresql:16.1.0-debian-11-r9',
    ],
    ['docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
    ['registry-1.docker.io/grafana/grafana:10.2.2', 'docker.io/grafana/grafana:10.2.2'],
    ['nvcr.io/nvidia/cuda:12.8.1-base-ubi9', 'nvcr.io/nvidia/cuda:12.8.1-base-ubi9'],
    [
      'registry.k8s.io/sig-storage/csi-provisioner:v4.0.0',
      'registry.k8s.io/sig-storage/csi-provisioner:v4.0.0',
    ],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/team/app:v1', 'localhost:5000/team/app:v1'],
    ['127.0.0.1:35000/a/b/c/d:x', '127.0.0.1:35000/a/b/c/d:x'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`quay.io/prometheus/prometheus:v2.48.1@${D}`, `quay.io/prometheus/prometheus:v2.48.1@${D}`],
    [
      'registry.k8s.io/ingress-nginx/kube-webhook-certgen:v20221220-controller-v1.5.1-58-g787ea74b6',
      'registry.k8s.io/ingress-nginx/kube-webhook-certgen:v20221220-controller-v1.5.1-58-g787ea74b6',
    ],
    ['a__b/c-d--e/f.g', 'docker.io/a__b/c-d--e/f.g:latest'],
  ])('%s → %s', (input, expected) => {
    expect(formatImageReference(parseImageReference(input))).toBe(expected)
  })

  it('keeps a digest-only reference without a tag', () => {
    const ref = parseImageReference(`nvcr.io/nvidia/driver@${D}`)
    expect(ref).toEqual({ registry: 'nvcr.io', repository: 'nvidia/driver', tag: undefined, digest: D })
  })

  it.each([
    ['', /empty/],
    ['Nginx', /lowercase/],
    ['nginx::1', /expected/],
    ['nginx:-bad', /expected/],
    ['nginx@sha256:abc', /expected|sha256/],
    [`nginx@md5:${'a'.repeat(32)}`, /sha256/],
    ['bad_host.io:port/x', /registry host|expected/],
    ['/nginx', /expected/],
    ['nginx/', /expected/],
  ])('rejects %j', (input, why) => {
    let error: unknown
    try {
      parseImageReference(input)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_INPUT')
    expect((error as AirgapError).message).toMatch(why)
  })

  it('maps docker.io to its API host', () => {
    expect(registryEndpointHost('docker.io')).toBe('registry-1.docker.io')
    expect(registryEndpointHost('ghcr.io')).toBe('ghcr.io')
  })
})
