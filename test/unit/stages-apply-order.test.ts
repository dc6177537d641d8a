import { describe, expect, it } from 'vitest'
import { applyOrder, orderForApply } from '../../src/stages/apply-order.js'
import type { KubeObject } from '../../src/stages/objects.js'

const o = (apiVersion: string, kind: string, name: string): KubeObject => ({
  apiVersion,
  kind,
  metadata: { name },
})
const names = (list: KubeObject[]) => list.map((x) => `${x.kind}/${x.metadata.name}`)

describe('apply order', () => {
  const objects = [
    o('apps/v1', 'Deployment', 'web'),
    o('example.com/v1', 'Widget', 'w1'),
    o('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', 'hook'),
    o('v1', 'Service', 'web'),
    o('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'widgets.example.com'),
    o('v1', 'ConfigMap', 'config'),
    o('rbac.authorization.k8s.io/v1', 'ClusterRole', 'reader'),
    o('v1', 'Namespace', 'apps'),
    o('v1', 'ServiceAccount', 'web'),
    o('batch/v1', 'Job', 'migrate'),
    o('v1', 'Secret', 'creds'),
    o('apps/v1', 'Deployment', 'api'),
    o('v1', 'Namespace', 'data'),
    o('example.com/v1', 'Gadget', 'g1'),
  ]

  it('puts namespaces first, then CRDs, then the rest by kind (custom kinds last), stable within a kind', () => {
    const phases = orderForApply(objects, (x) => x)
    expect(names(phases.namespaces)).toEqual(['Namespace/apps', 'Namespace/data'])
    expect(names(phases.crds)).toEqual(['CustomResourceDefinition/widgets.example.com'])
    expect(names(phases.rest)).toEqual([
      'ServiceAccount/web',
      'Secret/creds',
      'ConfigMap/config',
      'ClusterRole/reader',
      'Service/web',
      'Deployment/web',
      'Deployment/api',
      'Job/migrate',
      'ValidatingWebhookConfiguration/hook',
      'Widget/w1',
      'Gadget/g1',
    ])
    expect(names(applyOrder(objects, (x) => x))).toEqual([
      ...names(phases.namespaces),
      ...names(phases.crds),
      ...names(phases.rest),
    ])
  })

  it('only treats the real Namespace and CRD kinds as such', () => {
    const phases = orderForApply(
      [o('example.com/v1', 'Namespace', 'fake'), o('example.com/v1', 'CustomResourceDefinition', 'fake')],
      (x) => x,
    )
    expect(phases.namespaces).toEqual([])
    expect(phases.crds).toEqual([])
    expect(phases.rest).toHaveLength(2)
  })

  it('keeps the given items (not copies), and the same input gives the same order', () => {
    const wrapped = objects.map((object, i) => ({ object, i }))
    const first = applyOrder(wrapped, (w) => w.object)
    expect(first.every((w) => wrapped.includes(w))).toBe(true)
    expect(applyOrder(wrapped, (w) => w.object)).toEqual(first)
    // Reversing the input reverses the order within a kind, and only that.
    const reversed = applyOrder([...wrapped].reverse(), (w) => w.object)
    expect(names(reversed.map((w) => w.object)).slice(0, 2)).toEqual(['Namespace/data', 'Namespace/apps'])
    expect(names(reversed.map((w) => w.object)).slice(-2)).toEqual(['Gadget/g1', 'Widget/w1'])
  })
})
