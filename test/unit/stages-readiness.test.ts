import { describe, expect, it } from 'vitest'
import { labelSelector } from '../../src/stages/diagnose.js'
import type { ReadinessRule } from '../../src/stages/load-stages.js'
import { evaluateReadiness, evaluateRule } from '../../src/stages/readiness.js'

const cond = (type: string, status: string, reason?: string, message?: string) => ({
  type,
  status,
  ...(reason ? { reason } : {}),
  ...(message ? { message } : {}),
})

const deployment = (status: Record<string, unknown>, generation = 2, replicas = 3) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'apps', generation },
  spec: { replicas },
  status,
})

describe('readiness per kind', () => {
  it('Deployment: current generation, all replicas updated and available, Available condition', () => {
    const available = cond('Available', 'True', 'MinimumReplicasAvailable')
    expect(evaluateReadiness(deployment({ observedGeneration: 1 }))).toEqual({
      state: 'pending',
      reason: 'waiting for the controller to see generation 2',
    })
    expect(
      evaluateReadiness(deployment({ observedGeneration: 2, updatedReplicas: 1, replicas: 3 })).reason,
    ).toBe('1 of 3 replicas updated')
    expect(
      evaluateReadiness(
        deployment({ observedGeneration: 2, updatedReplicas: 3, replicas: 4, availableReplicas: 3 }),
      ).reason,
    ).toBe('1 old replicas are pending termination')
    expect(
      evaluateReadiness(
        deployment({ observedGeneration: 2, updatedReplicas: 3, replicas: 3, availableReplicas: 2 }),
      ).reason,
    ).toBe('2 of 3 updated replicas available')
    expect(
      evaluateReadiness(
        deployment({
          observedGeneration: 2,
          updatedReplicas: 3,
          replicas: 3,
          availableReplicas: 3,
          conditions: [cond('Available', 'False', 'MinimumReplicasUnavailable')],
        }),
      ).reason,
    ).toBe('Available is False (MinimumReplicasUnavailable)')
    expect(
      evaluateReadiness(
        deployment({
          observedGeneration: 2,
          updatedReplicas: 3,
          replicas: 3,
          availableReplicas: 3,
          conditions: [available],
        }),
      ),
    ).toEqual({ state: 'ready', reason: '3/3 replicas available' })
    // Zero replicas is ready once observed; no spec.replicas means 1.
    expect(
      evaluateReadiness(deployment({ observedGeneration: 2, conditions: [available] }, 2, 0)).state,
    ).toBe('ready')
    expect(
      evaluateReadiness({ ...deployment({ observedGeneration: 2, conditions: [available] }), spec: {} })
        .reason,
    ).toBe('0 of 1 replicas updated')
  })

  it('Deployment: a progress deadline exceeded fails at once', () => {
    const d = deployment({
      observedGeneration: 2,
      conditions: [
        cond('Progressing', 'False', 'ProgressDeadlineExceeded', 'ReplicaSet "web-1" has timed out'),
      ],
    })
    expect(evaluateReadiness(d)).toEqual({
      state: 'failed',
      reason: 'exceeded its progress deadline (ProgressDeadlineExceeded: ReplicaSet "web-1" has timed out)',
    })
  })

  it('StatefulSet: ready replicas and a finished rolling update', () => {
    const sts = (spec: Record<string, unknown>, status: Record<string, unknown>) => ({
      kind: 'StatefulSet',
      metadata: { name: 'db', generation: 1 },
      spec: { replicas: 2, ...spec },
      status: { observedGeneration: 1, ...status },
    })
    expect(evaluateReadiness(sts({}, { readyReplicas: 1 })).reason).toBe('1 of 2 replicas ready')
    expect(
      evaluateReadiness(
        sts({}, { readyReplicas: 2, updatedReplicas: 1, currentRevision: 'a', updateRevision: 'b' }),
      ).reason,
    ).toBe('rolling update: 1 of 2 replicas updated')
    expect(
      evaluateReadiness(
        sts({}, { readyReplicas: 2, updatedReplicas: 2, currentRevision: 'b', updateRevision: 'b' }),
      ),
    ).toEqual({ state: 'ready', reason: '2/2 replicas ready' })
    expect(
      evaluateReadiness(
        sts(
          { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } } },
          { readyReplicas: 2, updatedReplicas: 1 },
        ),
      ).state,
    ).toBe('ready')
    expect(evaluateReadiness(sts({ updateStrategy: { type: 'OnDelete' } }, { readyReplicas: 2 })).state).toBe(
      'ready',
    )
  })

  it('DaemonSet: scheduled, updated and ready on every node', () => {
    const ds = (status: Record<string, unknown>) => ({
      kind: 'DaemonSet',
      metadata: { name: 'agent', generation: 3 },
      status: { observedGeneration: 3, desiredNumberScheduled: 3, ...status },
    })
    expect(evaluateReadiness(ds({ currentNumberScheduled: 2 })).reason).toBe('2 of 3 pods scheduled')
    expect(evaluateReadiness(ds({ currentNumberScheduled: 3, updatedNumberScheduled: 1 })).reason).toBe(
      '1 of 3 pods updated',
    )
    expect(
      evaluateReadiness(ds({ currentNumberScheduled: 3, updatedNumberScheduled: 3, numberReady: 2 })).reason,
    ).toBe('2 of 3 pods ready')
    expect(
      evaluateReadiness(ds({ currentNumberScheduled: 3, updatedNumberScheduled: 3, numberReady: 3 })).state,
    ).toBe('ready')
    expect(evaluateReadiness(ds({ desiredNumberScheduled: 0 })).state).toBe('ready')
  })

  it('Job: complete is ready, Failed fails at once', () => {
    const job = (status: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({
      kind: 'Job',
      metadata: { name: 'migrate' },
      spec,
      status,
    })
    expect(evaluateReadiness(job({ succeeded: 0 }, { completions: 2 })).reason).toBe(
      '0 of 2 completions succeeded',
    )
    expect(evaluateReadiness(job({ conditions: [cond('Complete', 'True')] }))).toEqual({
      state: 'ready',
      reason: 'complete',
    })
    expect(
      evaluateReadiness(
        job({
          failed: 1,
          conditions: [
            cond('Failed', 'True', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit'),
          ],
        }),
      ),
    ).toEqual({
      state: 'failed',
      reason: 'the Job failed (BackoffLimitExceeded: Job has reached the specified backoff limit)',
    })
    expect(evaluateReadiness(job({}, { suspend: true })).reason).toBe('suspended')
  })

  it('CRD: Established; names not accepted fails', () => {
    const crd = (conditions: unknown[]) => ({
      kind: 'CustomResourceDefinition',
      metadata: { name: 'w' },
      status: { conditions },
    })
    expect(evaluateReadiness(crd([])).reason).toBe('no Established condition yet')
    expect(evaluateReadiness(crd([cond('NamesAccepted', 'True'), cond('Established', 'True')])).state).toBe(
      'ready',
    )
    expect(
      evaluateReadiness(
        crd([cond('NamesAccepted', 'False', 'ListKindConflict', '"WidgetList" is already in use')]),
      ),
    ).toEqual({
      state: 'failed',
      reason: 'its names were not accepted (ListKindConflict: "WidgetList" is already in use)',
    })
  })

  it('Pod: Ready condition, Succeeded, Failed, and why it waits', () => {
    const pod = (status: Record<string, unknown>) => ({ kind: 'Pod', metadata: { name: 'p' }, status })
    expect(evaluateReadiness(pod({ phase: 'Running', conditions: [cond('Ready', 'True')] })).state).toBe(
      'ready',
    )
    expect(evaluateReadiness(pod({ phase: 'Succeeded' })).state).toBe('ready')
    expect(evaluateReadiness(pod({ phase: 'Failed', reason: 'Evicted' })).state).toBe('failed')
    expect(
      evaluateReadiness(
        pod({
          phase: 'Pending',
          containerStatuses: [
            {
              name: 'app',
              state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "x"' } },
            },
          ],
        }),
      ),
    ).toEqual({ state: 'pending', reason: 'app: ImagePullBackOff (Back-off pulling image "x")' })
    expect(
      evaluateReadiness(
        pod({
          phase: 'Pending',
          conditions: [cond('PodScheduled', 'False', 'Unschedulable', '0/3 nodes are available')],
        }),
      ).reason,
    ).toBe('not scheduled (Unschedulable: 0/3 nodes are available)')
  })

  it('other kinds are ready once they exist; missing and deleting objects wait', () => {
    expect(evaluateReadiness({ kind: 'ConfigMap', metadata: { name: 'c' } }).state).toBe('ready')
    expect(
      evaluateReadiness({ kind: 'Namespace', metadata: { name: 'n' }, status: { phase: 'Terminating' } })
        .state,
    ).toBe('pending')
    expect(evaluateReadiness(undefined)).toEqual({ state: 'pending', reason: 'not found' })
    expect(
      evaluateReadiness({
        kind: 'ConfigMap',
        metadata: { name: 'c', deletionTimestamp: '2025-01-01T00:00:00Z' },
      }),
    ).toEqual({ state: 'pending', reason: 'being deleted' })
  })
})

describe('custom readiness rules', () => {
  const rule = (jsonPath: string, equals?: string): ReadinessRule => ({
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    name: 'w1',
    jsonPath,
    ...(equals !== undefined ? { equals } : {}),
    source: 'manifests/s/stage.yaml readiness[0]',
  })
  const widget = (status: unknown) => ({ kind: 'Widget', metadata: { name: 'w1' }, status })

  it('compares what the JSONPath finds with equals, as text', () => {
    const r = rule('{.status.conditions[?(@.type=="Ready")].status}', 'True')
    expect(evaluateRule(widget({}), r)).toEqual({
      state: 'pending',
      reason: '{.status.conditions[?(@.type=="Ready")].status} finds nothing yet (waiting for True)',
    })
    expect(evaluateRule(widget({ conditions: [cond('Ready', 'False')] }), r).reason).toBe(
      '{.status.conditions[?(@.type=="Ready")].status} is False, waiting for True',
    )
    expect(evaluateRule(widget({ conditions: [cond('Ready', 'True')] }), r).state).toBe('ready')
    expect(evaluateRule(widget({ replicas: 3 }), rule('{.status.replicas}', '3')).state).toBe('ready')
    expect(evaluateRule(undefined, r)).toEqual({ state: 'pending', reason: 'not found' })
  })

  it('without equals, any non-empty value will do', () => {
    expect(evaluateRule(widget({ url: '' }), rule('{.status.url}')).state).toBe('pending')
    expect(evaluateRule(widget({ url: 'https://x' }), rule('{.status.url}')).state).toBe('ready')
  })
})

describe('label selectors for finding a workload’s pods', () => {
  it('turns matchLabels and matchExpressions into the query form', () => {
    expect(
      labelSelector({
        matchLabels: { app: 'web', tier: 'front' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['a', 'b'] },
          { key: 'legacy', operator: 'DoesNotExist' },
          { key: 'gpu', operator: 'Exists' },
          { key: 'zone', operator: 'NotIn', values: ['z1'] },
        ],
      }),
    ).toBe('app=web,tier=front,env in (a,b),!legacy,gpu,zone notin (z1)')
    expect(labelSelector({})).toBeUndefined()
  })
})
