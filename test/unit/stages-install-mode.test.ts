import { describe, expect, it } from 'vitest'
import { decideInstallMode, type InstallModeInput, pruneCandidates } from '../../src/stages/install-mode.js'
import type { ObjectRef, ReleaseRef } from '../../src/stages/objects.js'
import { type InstallState, STATE_FORMAT, type StageState } from '../../src/stages/state.js'

/**
 * The install mode decision, branch by branch: what an install run does given the state recorded in the cluster and
 * the bundle, site values and stages it would install.
 */

const DIGEST = 'sha256:aaaa'
const VALUES = 'sha256:vvvv'
const NAMES = ['base', 'apps', 'jobs']

const cm = (name: string, namespace = 'app'): ObjectRef => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  namespace,
  name,
})
const ns = (name: string): ObjectRef => ({ apiVersion: 'v1', kind: 'Namespace', name })
const release = (name: string, namespace = 'app'): ReleaseRef => ({
  name,
  namespace,
  chart: name,
  version: '1.0.0',
})

function stage(
  name: string,
  status: StageState['status'],
  objects: ObjectRef[] = [],
  releases: ReleaseRef[] = [],
) {
  return { name, status, objects, releases } satisfies StageState
}

function recorded(overrides: Partial<InstallState> = {}): InstallState {
  return {
    format: STATE_FORMAT,
    bundle: { name: 'astrago', version: '1.0.0', digest: DIGEST },
    valuesDigest: VALUES,
    status: 'installed',
    startedAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:10:00.000Z',
    stages: NAMES.map((n) => stage(n, 'ready')),
    prune: { objects: [], releases: [] },
    namespaceCreated: true,
    ...overrides,
  }
}

function input(
  previous: InstallState | undefined,
  overrides: Partial<InstallModeInput> = {},
): InstallModeInput {
  return { previous, digest: DIGEST, valuesDigest: VALUES, stageNames: NAMES, ...overrides }
}

describe('decideInstallMode', () => {
  it('installs when nothing is recorded, with nothing to prune', () => {
    expect(decideInstallMode(input(undefined))).toEqual({
      mode: 'install',
      prune: { objects: [], releases: [] },
    })
  })

  it('installs when nothing is recorded, --reapply or not', () => {
    expect(decideInstallMode(input(undefined, { reapply: true })).mode).toBe('install')
  })

  it('changes nothing when the same bundle, values and stages are installed', () => {
    const previous = recorded()
    const decision = decideInstallMode(input(previous))
    expect(decision).toEqual({ mode: 'unchanged', previous })
    if (decision.mode === 'unchanged') expect(decision.previous).toBe(previous)
  })

  it('applies everything again with --reapply when the same input is installed, all of it a prune candidate', () => {
    const previous = recorded({
      stages: [
        stage('base', 'ready', [ns('app'), cm('a')]),
        stage('apps', 'ready', [], [release('web')]),
        stage('jobs', 'ready'),
      ],
    })
    expect(decideInstallMode(input(previous, { reapply: true }))).toEqual({
      mode: 'reapply',
      prune: { objects: [ns('app'), cm('a')], releases: [release('web')] },
    })
  })

  it('resumes at the first stage that is not ready', () => {
    const previous = recorded({
      status: 'installing',
      stages: [stage('base', 'ready'), stage('apps', 'applying'), stage('jobs', 'pending')],
    })
    const decision = decideInstallMode(input(previous))
    expect(decision).toEqual({ mode: 'resume', previous, firstToApply: 1 })
    if (decision.mode === 'resume') expect(decision.previous).toBe(previous)
  })

  it('resumes at the stage that failed', () => {
    const previous = recorded({
      status: 'failed',
      stages: [stage('base', 'ready'), stage('apps', 'ready'), stage('jobs', 'failed')],
    })
    expect(decideInstallMode(input(previous))).toMatchObject({ mode: 'resume', firstToApply: 2 })
  })

  it('resumes at the first stage when none is ready', () => {
    const previous = recorded({ status: 'installing', stages: NAMES.map((n) => stage(n, 'pending')) })
    expect(decideInstallMode(input(previous))).toMatchObject({ mode: 'resume', firstToApply: 0 })
  })

  it('resumes with only the prune left when every stage is ready but the install did not finish', () => {
    const previous = recorded({ status: 'installing', prune: { objects: [cm('old')], releases: [] } })
    expect(decideInstallMode(input(previous))).toMatchObject({ mode: 'resume', firstToApply: NAMES.length })
  })

  it('resumes an uninstall that stopped half way, at the first stage it removed', () => {
    const previous = recorded({
      status: 'uninstalling',
      stages: [stage('base', 'ready'), stage('apps', 'pending'), stage('jobs', 'pending')],
    })
    expect(decideInstallMode(input(previous))).toMatchObject({ mode: 'resume', firstToApply: 1 })
  })

  it('applies everything again with --reapply instead of resuming', () => {
    const previous = recorded({
      status: 'failed',
      stages: [stage('base', 'ready'), stage('apps', 'failed'), stage('jobs', 'pending')],
    })
    expect(decideInstallMode(input(previous, { reapply: true })).mode).toBe('reapply')
  })

  it('upgrades when another bundle is installed, all of the old one a prune candidate', () => {
    const previous = recorded({
      bundle: { name: 'astrago', version: '0.9.0', digest: 'sha256:0000' },
      stages: [
        stage('base', 'ready', [cm('a')]),
        stage('apps', 'ready', [], [release('web')]),
        stage('jobs', 'ready'),
      ],
    })
    expect(decideInstallMode(input(previous))).toEqual({
      mode: 'upgrade',
      prune: { objects: [cm('a')], releases: [release('web')] },
    })
  })

  it('upgrades when the site values differ', () => {
    expect(decideInstallMode(input(recorded(), { valuesDigest: 'sha256:other' })).mode).toBe('upgrade')
  })

  it('upgrades when the stages differ: one added, or the same ones in another order', () => {
    expect(decideInstallMode(input(recorded(), { stageNames: [...NAMES, 'extra'] })).mode).toBe('upgrade')
    expect(decideInstallMode(input(recorded(), { stageNames: ['apps', 'base', 'jobs'] })).mode).toBe(
      'upgrade',
    )
  })

  it('upgrades, not resumes, when an install of another bundle stopped half way', () => {
    const previous = recorded({
      status: 'failed',
      bundle: { name: 'astrago', version: '0.9.0', digest: 'sha256:0000' },
      stages: [stage('base', 'ready'), stage('apps', 'failed'), stage('jobs', 'pending')],
    })
    expect(decideInstallMode(input(previous)).mode).toBe('upgrade')
  })

  it('upgrades whether or not --reapply is given', () => {
    expect(decideInstallMode(input(recorded(), { digest: 'sha256:bbbb', reapply: true })).mode).toBe(
      'upgrade',
    )
  })
})

describe('pruneCandidates', () => {
  it('takes every object and release of every stage, and what was still to prune, each once', () => {
    const previous = recorded({
      stages: [
        stage('base', 'ready', [ns('app'), cm('a')]),
        stage('apps', 'ready', [cm('a'), cm('b', 'other')], [release('web'), release('db')]),
        stage('jobs', 'pending'),
      ],
      prune: { objects: [cm('old'), cm('a')], releases: [release('legacy'), release('web')] },
    })
    expect(pruneCandidates(previous)).toEqual({
      objects: [cm('old'), cm('a'), ns('app'), cm('b', 'other')],
      releases: [release('legacy'), release('web'), release('db')],
    })
  })

  it('tells objects apart by namespace and releases by namespace', () => {
    const previous = recorded({
      stages: [
        stage(
          'base',
          'ready',
          [cm('a', 'one'), cm('a', 'two')],
          [release('web', 'one'), release('web', 'two')],
        ),
      ],
    })
    const { objects, releases } = pruneCandidates(previous)
    expect(objects).toHaveLength(2)
    expect(releases).toHaveLength(2)
  })

  it('is empty for an install that applied nothing', () => {
    expect(pruneCandidates(recorded({ stages: NAMES.map((n) => stage(n, 'pending')) }))).toEqual({
      objects: [],
      releases: [],
    })
  })
})
