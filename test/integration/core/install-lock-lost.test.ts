import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFromDefinition } from '../../../src/bundle/bundle-from-definition.js'
import { BundleReader } from '../../../src/bundle/reader.js'
import { AirgapError } from '../../../src/errors.js'
import type { EventSink, ProgressEvent } from '../../../src/events/types.js'
import { GENERATED_SECRET } from '../../../src/stages/generated-values.js'
import { INSTALL_LOCK } from '../../../src/stages/install-lock.js'
import { type InstallResult, installStages } from '../../../src/stages/install-stages.js'
import { readInstallState } from '../../../src/stages/install-status.js'
import { KubeClient } from '../../../src/stages/kube-client.js'
import type { KubeObject, ObjectRef } from '../../../src/stages/objects.js'
import { uninstallStages } from '../../../src/stages/uninstall-stages.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { findTool } from '../../support/tools.js'

/**
 * Losing the install lock in the middle of an install and of an uninstall, against a real control plane: while the
 * run waits (for a readiness rule only this test satisfies; for an object held by a finalizer only this test
 * removes), the test takes the Lease as another holder. The run must stop within moments with the lock-lost E_CLUSTER
 * error, leave everything after the point it reached untouched, and keep its state so that a later run, once the
 * other holder is gone, goes on from there. The lease lasts 3 s (renewed every second) through `lockLeaseSeconds`.
 */
describe('losing the install lock stops install and uninstall', () => {
  let work: string
  let cp: ControlPlane
  let client: KubeClient
  const helmBin = findTool('helm')
  const other = 'other-host/2/y'

  /**
   * One test's own bundle, installer namespace and objects, so that each test stands alone: stage "first" (namespace
   * lock-<tag>, ConfigMap first, ready when its data.ready is "yes"), stage "second" (ConfigMap second).
   */
  interface Case {
    bundle: string
    namespace: string
    lease: ObjectRef
    first: ObjectRef
    second: ObjectRef
    demo: ObjectRef
  }
  const cases: Record<string, Case> = {}

  const write = (path: string, text: string) => {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
  }

  async function buildCase(tag: string): Promise<Case> {
    const demo = `lock-${tag}`
    const stages = join(work, tag)
    write(
      join(stages, 'first', 'first.yaml'),
      `apiVersion: v1
kind: Namespace
metadata: {name: ${demo}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: first, namespace: ${demo}}
data: {purpose: first stage}
`,
    )
    write(
      join(stages, 'first', 'stage.yaml'),
      `apiVersion: airgap.astrago.io/v1alpha1
kind: Stage
timeout: 2m
readiness:
  - apiVersion: v1
    kind: ConfigMap
    name: first
    namespace: ${demo}
    jsonPath: '{.data.ready}'
    equals: "yes"
`,
    )
    write(
      join(stages, 'second', 'second.yaml'),
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: second, namespace: ${demo}}\ndata: {purpose: second stage}\n`,
    )
    const definition = join(work, `${demo}.yaml`)
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: demo, version: '1.0.0' },
        stages: [
          { name: 'first', path: `./${tag}/first` },
          { name: 'second', path: `./${tag}/second` },
        ],
      }),
    )
    const built = await bundleFromDefinition({
      definition,
      outputDir: join(work, 'out'),
      toolVersion: 'test',
      sink: { emit() {} },
    })
    const namespace = `astrago-airgap-${tag}`
    return {
      bundle: built.path,
      namespace,
      lease: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace, name: INSTALL_LOCK },
      first: { apiVersion: 'v1', kind: 'ConfigMap', namespace: demo, name: 'first' },
      second: { apiVersion: 'v1', kind: 'ConfigMap', namespace: demo, name: 'second' },
      demo: { apiVersion: 'v1', kind: 'Namespace', name: demo },
    }
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-lock-lost-it-'))
    const [plane] = await Promise.all([
      startControlPlane(),
      (async () => {
        for (const tag of ['install', 'uninstall']) cases[tag] = await buildCase(tag)
      })(),
    ])
    cp = plane
    client = KubeClient.load({ kubeconfig: cp.kubeconfigPath })
  }, 180_000)

  afterAll(async () => {
    await cp?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  /** Records every event; calls `react` on each. */
  function recorder(
    react: (event: ProgressEvent) => void = () => {},
  ): EventSink & { events: ProgressEvent[] } {
    const events: ProgressEvent[] = []
    return {
      events,
      emit(event) {
        events.push(event)
        react(event)
      },
    }
  }

  /** Takes the Lease as another installer would (it replaces ours); resolves to when it was taken. */
  async function takeLease(c: Case): Promise<number> {
    const current = await client.get(c.lease)
    if (!current) throw new Error('the run under test holds no Lease')
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
    await client.replace({
      ...current,
      metadata: { ...current.metadata, annotations: { 'airgap.astrago.io/operation': 'install other' } },
      spec: { holderIdentity: other, leaseDurationSeconds: 60, acquireTime: now, renewTime: now },
    })
    return Date.now()
  }

  /** The other holder's, still: the run that lost the Lease neither fought over it nor deleted it. */
  async function holderOf(c: Case): Promise<string | undefined> {
    return ((await client.get(c.lease))?.spec as { holderIdentity?: string } | undefined)?.holderIdentity
  }

  /** Changes an object with a plain update (read, change, replace), as a controller would. */
  async function update(ref: ObjectRef, change: (object: KubeObject) => void): Promise<void> {
    const object = await client.get(ref)
    if (!object) throw new Error(`${ref.kind} ${ref.name} does not exist`)
    change(object)
    await client.replace(object)
  }

  /** Plays the controller that makes stage first's ConfigMap ready. */
  const markReady = (c: Case) =>
    update(c.first, (cm) => {
      cm.data = { ...(cm.data as Record<string, string>), ready: 'yes' }
    })
  const setFinalizers = (ref: ObjectRef, finalizers: string[]) =>
    update(ref, (object) => {
      object.metadata.finalizers = finalizers
    })

  async function install(c: Case, sink: EventSink): Promise<InstallResult> {
    const reader = await BundleReader.open(c.bundle)
    try {
      return await installStages({
        reader,
        kubeconfig: cp.kubeconfigPath,
        namespace: c.namespace,
        helm: helmBin,
        sink,
        lockLeaseSeconds: 3,
      })
    } finally {
      await reader.close()
    }
  }

  const uninstall = (c: Case, sink: EventSink) =>
    uninstallStages({
      kubeconfig: cp.kubeconfigPath,
      namespace: c.namespace,
      helm: helmBin,
      sink,
      timeoutMs: 30_000,
      lockLeaseSeconds: 3,
    })

  const stateOf = (c: Case) => readInstallState({ kubeconfig: cp.kubeconfigPath, namespace: c.namespace })

  /** The error of a run that was expected to fail. */
  const failure = (run: Promise<unknown>): Promise<AirgapError> =>
    run.then(
      () => {
        throw new Error('the run did not stop')
      },
      (e: unknown) => {
        if (!(e instanceof AirgapError)) throw e
        return e
      },
    )

  it('stops an install waiting in stage 1 with the lock-lost error, stage 2 not applied; a rerun resumes', async () => {
    const c = cases.install!
    let taken: Promise<number> | undefined
    const sink = recorder((e) => {
      if (e.type === 'task.start' && e.kind === 'stage.wait') taken ??= takeLease(c)
    })
    const lost = await failure(install(c, sink))
    const stoppedAt = Date.now()
    expect(taken, 'the install never waited for stage first').toBeDefined()
    expect(lost.code, lost.message).toBe('E_CLUSTER')
    expect(lost.message).toBe(
      `Lost the install lock ${c.namespace}/${INSTALL_LOCK}: another run took it: ${other} (install other). Stopped before applying anything more, since another installer may be running.`,
    )
    expect(lost.hints).toEqual([
      'Check with `astrago-airgap status` whether another install or uninstall is running; when none is, run the install again to resume.',
    ])
    // Within a renewal or two of the theft (the lease lasts 3 s), not at the stage's 2 min timeout.
    console.log(`install stopped ${stoppedAt - (await taken!)} ms after the Lease was taken`)
    expect(stoppedAt - (await taken!)).toBeLessThan(5000)
    expect(sink.events).toContainEqual(expect.objectContaining({ type: 'log', code: 'W_LOCK_LOST' }))

    expect(await client.get(c.first)).toBeDefined()
    expect(await client.get(c.second), 'stage second was applied after the lock was lost').toBeUndefined()
    const state = await stateOf(c)
    expect(state?.status).toBe('installing')
    expect(state?.stages.map((s) => [s.name, s.status])).toEqual([
      ['first', 'applying'],
      ['second', 'pending'],
    ])
    expect(await holderOf(c)).toBe(other)

    // The other installer ends; stage first's object becomes ready; the install is run again and resumes.
    await client.delete(c.lease)
    await markReady(c)
    const result = await install(c, recorder())
    expect(result.mode).toBe('resume')
    expect(result.stages.map((s) => [s.name, s.action])).toEqual([
      ['first', 'applied'],
      ['second', 'applied'],
    ])
    expect(await client.get(c.second)).toBeDefined()
    expect((await stateOf(c))?.status).toBe('installed')
  })

  it('stops an uninstall waiting for an object held by a finalizer, stage 1 not removed; a rerun continues', async () => {
    const c = cases.uninstall!
    let ready: Promise<void> | undefined
    await install(
      c,
      recorder((e) => {
        if (e.type === 'task.start' && e.kind === 'stage.wait') ready ??= markReady(c)
      }),
    )
    await ready
    // Stage second is removed first; its ConfigMap stays until the test removes this finalizer.
    await setFinalizers(c.second, ['example.com/hold'])
    let taken: Promise<number> | undefined
    const sink = recorder((e) => {
      if (e.type === 'task.start' && e.kind === 'remove.wait') taken ??= takeLease(c)
    })
    const lost = await failure(uninstall(c, sink))
    const stoppedAt = Date.now()
    expect(taken, 'the uninstall never waited for stage second to go').toBeDefined()
    expect(lost.code, lost.message).toBe('E_CLUSTER')
    expect(lost.message).toBe(
      `Lost the install lock ${c.namespace}/${INSTALL_LOCK}: another run took it: ${other} (install other). Stopped before removing anything more, since another installer may be running.`,
    )
    expect(lost.hints).toEqual([
      'Check with `astrago-airgap status` whether another install or uninstall is running; when none is, run the uninstall again to continue.',
    ])
    // Within a renewal or two of the theft, not at the 30 s delete timeout.
    console.log(`uninstall stopped ${stoppedAt - (await taken!)} ms after the Lease was taken`)
    expect(stoppedAt - (await taken!)).toBeLessThan(5000)
    expect(sink.events).toContainEqual(expect.objectContaining({ type: 'log', code: 'W_LOCK_LOST' }))

    // Stage first is not touched; the state still records both stages, so a later uninstall knows what to remove.
    expect(await client.get(c.first)).toBeDefined()
    expect(await client.get(c.demo)).toBeDefined()
    const state = await stateOf(c)
    expect(state?.stages.map((s) => [s.name, s.status, s.objects.length])).toEqual([
      ['first', 'ready', 2],
      ['second', 'ready', 1],
    ])
    expect(await holderOf(c)).toBe(other)

    // The other installer ends and the finalizer's controller lets go: the uninstall is run again and finishes.
    await client.delete(c.lease)
    await setFinalizers(c.second, [])
    const result = await uninstall(c, recorder())
    expect(result.nothingToDo).toBe(false)
    for (const ref of [c.first, c.second, c.demo])
      expect(await client.get(ref), `${ref.kind} ${ref.name}`).toBeUndefined()
    expect(await stateOf(c)).toBeUndefined()
  })

  it('uninstall --purge with nothing installed waits its turn: refused while another run holds the lock', async () => {
    // What an earlier uninstall kept (the generated passwords), and another installer at work in the same namespace.
    const namespace = 'lock-purge-installer'
    const secret = { apiVersion: 'v1', kind: 'Secret', namespace, name: GENERATED_SECRET }
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace, name: INSTALL_LOCK }
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
    await client.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: GENERATED_SECRET, namespace },
      data: {},
    })
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
    await client.create({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: INSTALL_LOCK,
        namespace,
        annotations: { 'airgap.astrago.io/operation': 'install other' },
      },
      spec: { holderIdentity: other, leaseDurationSeconds: 60, acquireTime: now, renewTime: now },
    })
    const purge = () =>
      uninstallStages({
        kubeconfig: cp.kubeconfigPath,
        helm: helmBin,
        namespace,
        purge: true,
        sink: recorder(),
      })
    const refused = await purge().then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(refused).toBeInstanceOf(AirgapError)
    expect((refused as AirgapError).code).toBe('E_CLUSTER')
    expect((refused as AirgapError).message).toContain(other)
    expect(await client.get(secret)).toBeDefined()
    // Once the other run is done, the purge goes through.
    await client.delete(lease)
    const result = await purge()
    expect(result.removed.objects).toEqual([secret])
    expect(await client.get(secret)).toBeUndefined()
  })
})
