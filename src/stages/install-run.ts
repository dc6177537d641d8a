import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AirgapError } from '../errors.js'
import type { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import type { HelmRunner } from '../helm/helm-runner.js'
import { applyObjects, resolveScopes } from './apply.js'
import { clusterError, FIELD_MANAGER, type KubeClient } from './kube-client.js'
import type { StageSource } from './load-stages.js'
import { type KubeObject, type ObjectRef, type ReleaseRef, refKey, refOf, releaseKey } from './objects.js'
import type { InstallPlan, PlannedChart, PlannedStage } from './plan-stages.js'
import { DEFAULT_DELETE_TIMEOUT_MS, removeAll } from './remove-objects.js'
import { releaseRefOf, ruleRef } from './stage-refs.js'
import type { InstallState, StageState, StateStore } from './state.js'
import { type WaitTarget, waitForReady } from './wait.js'

/**
 * One install run against one cluster, stage by stage: apply a stage (its manifests, the namespaces its charts need,
 * its Helm releases) and wait until it is ready, or only check a stage an earlier run installed; then prune what an
 * older bundle applied and this one no longer owns. It remembers every object and release the current bundle owns
 * so that the prune keeps them. installStages decides which stages to apply and which to check.
 */

/** What an install run needs of the install's options. */
export interface InstallRunOptions {
  /** The opened bundle: the chart archives are read from it. */
  reader: StageSource
  sink: EventSink
  signal?: AbortSignal
  /** How long the prune waits for deleted objects to go (default 5 min). */
  deleteTimeoutMs?: number
}

export interface StageResult {
  name: string
  /** applied: applied and waited for; checked: only checked for readiness; planned: dry run. */
  action: 'applied' | 'checked' | 'planned'
  objects: number
  releases: string[]
  durationMs: number
}

export class InstallRun {
  /** Keys of the objects the current bundle owns (plain objects and release objects), for pruning. */
  private readonly current = new Set<string>()
  private readonly currentReleases = new Set<string>()
  /** Namespaces the current bundle's objects live in: never pruned, whoever created them. */
  private readonly currentNamespaces = new Set<string>()
  private readonly chartFiles = new Map<string, string>()

  constructor(
    private readonly client: KubeClient,
    private readonly helm: HelmRunner,
    private readonly store: StateStore,
    private readonly plan: InstallPlan,
    private readonly options: InstallRunOptions,
    private readonly root: Task,
    private readonly workDir: string,
  ) {}

  /** Applies one stage and waits for it; the state is written before and after. */
  async applyStage(stage: PlannedStage, state: InstallState, index: number): Promise<StageResult> {
    const started = Date.now()
    const userSignal = this.options.signal
    const task = this.root.child('stage.apply', `Stage ${stage.name}`, { data: { stage: stage.name } })
    const deadline = started + stage.timeoutMs
    const timeout = AbortSignal.timeout(stage.timeoutMs)
    const signal = userSignal ? AbortSignal.any([userSignal, timeout]) : timeout
    const record = state.stages[index]!
    let step = 'preparing'
    try {
      const objects = await resolveScopes(this.client, stage.objects, signal)
      const releaseNamespaces = await this.releaseNamespaces(stage, signal)
      Object.assign(record, {
        status: 'applying',
        startedAt: new Date(started).toISOString(),
        objects: [...releaseNamespaces.map(refOf), ...objects.map((o) => refOf(o.object))],
        releases: stage.charts.map(releaseRefOf),
      } satisfies Partial<StageState>)
      delete record.endedAt
      delete record.error
      await this.store.write(state, userSignal)

      const ctx = {
        client: this.client,
        stage: stage.name,
        deadline,
        timeoutMs: stage.timeoutMs,
        task,
        signal,
        userSignal,
      }
      step = 'applying the manifests'
      await applyObjects(
        [
          ...releaseNamespaces.map((object) => ({
            object,
            source: `the namespace of a chart of stage ${stage.name}`,
          })),
          ...objects,
        ],
        ctx,
      )
      const targets: WaitTarget[] = objects.map((o) => ({ ref: refOf(o.object) }))
      for (const chart of stage.charts) {
        step = `installing the release ${chart.namespace}/${chart.release}`
        const released = await this.installChart(chart, stage, task, deadline, signal)
        for (const ref of released) targets.push({ ref })
      }
      for (const rule of stage.readiness) targets.push({ ref: ruleRef(rule), rule })
      for (const ref of [...targets.map((t) => t.ref), ...record.objects]) this.own(ref)
      for (const r of record.releases) this.currentReleases.add(releaseKey(r))

      step = 'waiting for readiness'
      await waitForReady(targets, { ...ctx, signal: userSignal })

      record.status = 'ready'
      record.endedAt = new Date().toISOString()
      await this.store.write(state, userSignal)
      task.end('done', `${record.objects.length} objects, ${record.releases.length} releases ready`)
      return {
        name: stage.name,
        action: 'applied',
        objects: record.objects.length,
        releases: record.releases.map(releaseKey),
        durationMs: Date.now() - started,
      }
    } catch (caught) {
      let error = caught
      if (userSignal?.aborted) {
        task.end('failed', 'interrupted')
        throw new AirgapError(
          'E_INTERRUPTED',
          `Interrupted in stage ${stage.name} (${step}); run the install again to resume at this stage.`,
          { cause: caught },
        )
      }
      if (timeout.aborted && !(error instanceof AirgapError)) {
        error = new AirgapError(
          'E_CLUSTER',
          `Stage ${stage.name} did not finish within its timeout (${Math.round(stage.timeoutMs / 1000)}s) while ${step}.`,
          {
            cause: caught,
            hints: [
              'Raise timeout in the stage.yaml if the stage only needs longer, or check the cluster, then run again.',
            ],
            data: { stage: stage.name },
          },
        )
      }
      const e = error instanceof AirgapError ? error : clusterError(error, step, this.client.server)
      record.status = 'failed'
      record.endedAt = new Date().toISOString()
      record.error = e.message.split('\n')[0]
      state.status = 'failed'
      await this.store.write(state, userSignal).catch(() => {})
      task.end('failed', record.error)
      throw e
    }
  }

  /** A stage already installed: only check that it is still ready (nothing is applied). */
  async checkStage(stage: PlannedStage, record: StageState): Promise<StageResult> {
    const started = Date.now()
    const task = this.root.child('stage.check', `Stage ${stage.name} (installed; checking readiness)`, {
      data: { stage: stage.name },
    })
    try {
      const targets: WaitTarget[] = record.objects.map((ref) => ({ ref }))
      for (const release of record.releases) {
        const objects = await this.helm.manifest(release.name, release.namespace, this.options.signal)
        if (!objects) {
          throw new AirgapError(
            'E_CLUSTER',
            `Stage ${stage.name}: the Helm release ${release.namespace}/${release.name} recorded as installed is missing.`,
            {
              hints: ['Run the install with --reapply to install the stages again.'],
              data: { stage: stage.name, release },
            },
          )
        }
        for (const o of await this.withNamespaces(objects, release.namespace)) targets.push({ ref: refOf(o) })
        this.currentReleases.add(releaseKey(release))
      }
      for (const rule of stage.readiness) targets.push({ ref: ruleRef(rule), rule })
      for (const t of targets) this.own(t.ref)
      await waitForReady(targets, {
        client: this.client,
        stage: stage.name,
        deadline: Date.now() + stage.timeoutMs,
        timeoutMs: stage.timeoutMs,
        task,
        signal: this.options.signal,
        verb: 'Check',
      })
      task.end('done', `${targets.length} objects ready`)
      return {
        name: stage.name,
        action: 'checked',
        objects: record.objects.length,
        releases: record.releases.map(releaseKey),
        durationMs: Date.now() - started,
      }
    } catch (error) {
      task.end('failed', error instanceof Error ? error.message.split('\n')[0] : String(error))
      throw error
    }
  }

  private own(ref: ObjectRef): void {
    this.current.add(refKey(ref))
    if (ref.namespace) this.currentNamespaces.add(ref.namespace)
  }

  /** Removes what an older bundle installed and the current one no longer ships. */
  async prune(state: InstallState): Promise<{ objects: ObjectRef[]; releases: ReleaseRef[] }> {
    const releases = state.prune.releases.filter((r) => !this.currentReleases.has(releaseKey(r)))
    const objects = state.prune.objects.filter((ref) => {
      if (this.current.has(refKey(ref))) return false
      if (ref.kind === 'Namespace' && this.currentNamespaces.has(ref.name)) {
        this.options.sink.emit({
          type: 'log',
          level: 'warn',
          code: 'W_PRUNE_KEPT',
          message: `Namespace ${ref.name} is no longer in the bundle but still holds its objects: kept.`,
          data: { namespace: ref.name },
        })
        return false
      }
      return true
    })
    if (!releases.length && !objects.length) return { objects: [], releases: [] }
    const task = this.root.child('install.prune', 'Remove what the new bundle no longer ships', {
      total: releases.length + objects.length,
      unit: 'items',
    })
    return await task.run(
      async () => {
        const removed = await removeAll(this.client, this.helm, objects, releases, {
          task,
          signal: this.options.signal,
          timeoutMs: this.options.deleteTimeoutMs ?? DEFAULT_DELETE_TIMEOUT_MS,
          what: 'Pruning',
          keep: this.current,
        })
        return removed
      },
      (r) => `${r.objects.length} objects, ${r.releases.length} releases removed`,
    )
  }

  /**
   * The namespaces the stage's releases go into that the installer owns: those it must create (helm's
   * --create-namespace would leave them behind at uninstall) and those it created earlier. Namespaces the stage's
   * manifests (or anyone else) manage are left out.
   */
  private async releaseNamespaces(stage: PlannedStage, signal: AbortSignal): Promise<KubeObject[]> {
    const planned = new Set(
      this.plan.stages.flatMap((s) =>
        s.objects.filter((o) => o.object.kind === 'Namespace').map((o) => o.object.metadata.name),
      ),
    )
    const out: KubeObject[] = []
    for (const name of new Set(stage.charts.map((c) => c.namespace))) {
      if (planned.has(name)) continue
      const ref = { apiVersion: 'v1', kind: 'Namespace', name }
      const existing = await this.client.get(ref, signal)
      const ours =
        !existing ||
        ((existing.metadata.managedFields as { manager?: string }[] | undefined) ?? []).some(
          (f) => f.manager === FIELD_MANAGER,
        )
      if (ours)
        out.push({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'astrago-airgap' } },
        })
    }
    return out
  }

  private async installChart(
    chart: PlannedChart,
    stage: PlannedStage,
    stageTask: Task,
    deadline: number,
    signal: AbortSignal,
  ): Promise<ObjectRef[]> {
    const task = stageTask.child(
      'stage.release',
      `Helm release ${chart.namespace}/${chart.release} (${chart.chart} ${chart.version})`,
      {
        data: {
          namespace: chart.namespace,
          release: chart.release,
          chart: chart.chart,
          version: chart.version,
        },
      },
    )
    try {
      let chartFile = this.chartFiles.get(chart.member)
      if (!chartFile) {
        chartFile = join(this.workDir, `${chart.chart}-${chart.version}.tgz`)
        await writeFile(chartFile, await this.options.reader.read(chart.member))
        this.chartFiles.set(chart.member, chartFile)
      }
      const valuesFiles: string[] = []
      for (const [i, values] of chart.values.entries()) {
        const file = join(this.workDir, `values-${stage.name}-${chart.release}-${i}.json`)
        await writeFile(file, JSON.stringify(values.values), { mode: 0o600 })
        valuesFiles.push(file)
      }
      const installed = await this.helm.upgradeInstall({
        release: chart.release,
        namespace: chart.namespace,
        chartFile,
        valuesFiles,
        timeoutMs: Math.max(1000, deadline - Date.now()),
        signal,
      })
      if (installed.recovered)
        this.options.sink.emit({
          type: 'log',
          level: 'warn',
          code: 'W_HELM_RECOVERED',
          message: `Release ${chart.namespace}/${chart.release}: ${installed.recovered}`,
          data: { namespace: chart.namespace, release: chart.release },
        })
      const objects = (await this.helm.manifest(chart.release, chart.namespace, signal)) ?? []
      const refs = (await this.withNamespaces(objects, chart.namespace)).map(refOf)
      task.end('done', `revision ${installed.revision}, ${refs.length} objects`)
      return refs
    } catch (error) {
      task.end('failed', error instanceof Error ? error.message.split('\n')[0] : String(error))
      if (error instanceof Error && error.name === 'HelmError')
        throw new AirgapError(
          'E_CLUSTER',
          `Stage ${stage.name}: helm could not install ${chart.chart} ${chart.version} as ${chart.namespace}/${chart.release}: ${error.message}`,
          { cause: error, data: { stage: stage.name, release: releaseRefOf(chart) } },
        )
      throw error
    }
  }

  /** Release manifests leave namespaces out: namespaced objects live in the release's namespace. */
  private async withNamespaces(objects: KubeObject[], namespace: string): Promise<KubeObject[]> {
    const out: KubeObject[] = []
    for (const o of objects) {
      const info = await this.client.resourceOf(o.apiVersion, o.kind, this.options.signal)
      const namespaced = info?.namespaced ?? Boolean(o.metadata.namespace)
      const copy = { ...o, metadata: { ...o.metadata } }
      if (namespaced) copy.metadata.namespace ??= namespace
      else delete copy.metadata.namespace
      out.push(copy)
    }
    return out
  }
}
