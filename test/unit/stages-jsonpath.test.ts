import { describe, expect, it } from 'vitest'
import { JsonPathError, jsonPath, parseJsonPath } from '../../src/stages/jsonpath.js'

const pod = {
  metadata: { name: 'web-0', annotations: { 'example.com/ready': 'yes' }, labels: { app: 'web' } },
  spec: {
    containers: [
      { name: 'app', image: 'nginx' },
      { name: 'side', image: 'envoy' },
    ],
  },
  status: {
    phase: 'Running',
    replicas: 3,
    conditions: [
      { type: 'Initialized', status: 'True' },
      { type: 'Ready', status: 'False', reason: 'ContainersNotReady' },
      { type: 'ContainersReady', status: 'False' },
    ],
  },
}

describe('JSONPath subset', () => {
  it('follows fields and array indexes, with or without braces and $', () => {
    expect(jsonPath('{.status.phase}', pod)).toEqual(['Running'])
    expect(jsonPath('.status.phase', pod)).toEqual(['Running'])
    expect(jsonPath('{$.status.replicas}', pod)).toEqual([3])
    expect(jsonPath('{.spec.containers[0].image}', pod)).toEqual(['nginx'])
    expect(jsonPath('{.spec.containers[-1].name}', pod)).toEqual(['side'])
    expect(jsonPath('{.spec.containers[5].name}', pod)).toEqual([])
    expect(jsonPath('{.status.missing.deeper}', pod)).toEqual([])
  })

  it('takes quoted names for keys with dots and slashes', () => {
    expect(jsonPath("{.metadata.annotations['example.com/ready']}", pod)).toEqual(['yes'])
    expect(jsonPath('{.metadata.annotations["example.com/ready"]}', pod)).toEqual(['yes'])
  })

  it('expands wildcards over lists and mappings', () => {
    expect(jsonPath('{.spec.containers[*].name}', pod)).toEqual(['app', 'side'])
    expect(jsonPath('{.metadata.labels.*}', pod)).toEqual(['web'])
  })

  it('filters by equality, inequality and existence', () => {
    expect(jsonPath('{.status.conditions[?(@.type=="Ready")].status}', pod)).toEqual(['False'])
    expect(jsonPath("{.status.conditions[?(@.type == 'Ready')].reason}", pod)).toEqual(['ContainersNotReady'])
    expect(jsonPath('{.status.conditions[?(@.status!="False")].type}', pod)).toEqual(['Initialized'])
    expect(jsonPath('{.status.conditions[?(@.reason)].type}', pod)).toEqual(['Ready'])
    expect(jsonPath('{.status.conditions[?(@.type=="Absent")].status}', pod)).toEqual([])
    expect(
      jsonPath('{.items[?(@.n==2)].v}', {
        items: [
          { n: 1, v: 'a' },
          { n: 2, v: 'b' },
        ],
      }),
    ).toEqual(['b'])
    expect(
      jsonPath('{.items[?(@.on==true)].v}', {
        items: [
          { on: true, v: 'a' },
          { on: false, v: 'b' },
        ],
      }),
    ).toEqual(['a'])
  })

  it('refuses what it does not support, naming the position', () => {
    for (const bad of ['{.a', '{}', '{.a[}', '{.a[?(@.b > 1)]}', '{.a[?(b=="x")]}', '{.a..b}', "{.a['x}"]) {
      expect(() => parseJsonPath(bad), bad).toThrow(JsonPathError)
    }
    expect(() => parseJsonPath('{.a[?(@.b > 1)]}')).toThrow(/at character 11: expected "\)"/)
  })

  it('never evaluates code', () => {
    expect(() => parseJsonPath('{.a[?(@.b==process.exit())]}')).toThrow(JsonPathError)
    expect(jsonPath('{.constructor}', {})).toEqual([])
    expect(jsonPath('{.__proto__}', {})).toEqual([])
  })
})
