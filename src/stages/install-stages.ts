import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BUNDLE_JSON } from '../bundle/layout.js'
import { AirgapError } from '../errors.js'
import { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { HelmRunner } from '../helm/helm-runner.js'
import { applyObjects, resolveScopes } from './apply.js'
import {
  fillGeneratedValues,
  GENERATED_SECRET,
  type GeneratedValue,
  saveGeneratedValues,
} from './generated-values.js'
import { InstallLock } from './install-lock.js'
import { clusterError, FIELD_MANAGER, KubeClient } from './kube-client.js'
import { loadStages, type StageSource } from './load-stages.js'
import {
  formatRef,
  type KubeObject,
  type ObjectRef,
  type ReleaseRef,
  refKey,
  refOf,
  releaseKey,
} from './objects.js'
import { type InstallPlan, type PlannedChart, type PlannedStage, planStages } from './plan-stages.js'
import { type PreflightReport, runPreflight, summarisePreflight } from './preflight.js'
import {
  DEFAULT_INSTALL_NAMESPACE,
  type InstallState,
  STATE_CONFIGMAP,
  STATE_FORMAT,
  type StageState,
  StateStore,
} from './state.js'
import { type WaitTarget, waitForReady, waitUntilGone } from './wait.js'

/**
 * Applies a bundle's stages to a cluster, in order, each one waited for until ready, with the state kept in the
 * cluster so that:
 *   - an install stopped anywhere (Ctrl-C, kill -9, a stage that timed out) resumes at the first unfinished stage;
 *     the stages before it are only checked for readiness, not applied again;
 *   - a rerun of a finished install with the same bundle and site values checks readiness and changes nothing;
 *   - a different bundle (or different site values) applies every stage again (server-side apply is idempotent),
 *     then removes the objects and Helm releases the old bundle had and the new one no longer ships.
 * `dryRun` returns the plan without contacting the cluster. Progress is one task per stage, with its objects, releases
 * and waits as subtasks.
 */
export interface InstallStagesOptions {
  /** The opened bundle (a BundleReader). */
  reader: StageSource
  /** Path of the kubeconfig file. */
  kubeconfig: string
  context?: string
  /** The site values (parsed --values file); {} when there are none. */
  siteValues?: Record<string, unknown>
  /** The helm binary (only run when a stage has charts). */
  helm: string
  /** The installer's namespace, which holds the state ConfigMap (default astrago-airgap). */
  namespace?: string
  /** Relocate pod-spec images of plain manifests to this registry (default: off; nodes use containerd mirrors). */
  imageRegistry?: string
  dryRun?: boolean
  skipPreflight?: boolean
  /** Apply every stage again even when the state says the same bundle is installed (repairs hand-deleted objects). */
  reapply?: boolean
  /** How long uninstall/prune waits for deleted objects to go (default 5 min). */
  deleteTimeoutMs?: number
  sink: EventSink
  signal?: AbortSignal
}

export type InstallMode = 'install' | 'resume' | 'upgrade' | 'reapply' | 'unchanged' | 'dry-run'

export interface StageResult {
  name: string
  /** applied: applied and waited for; checked: only checked for readiness; planned: dry run. */
  action: 'applied' | 'checked' | 'planned'
  objects: number
  releases: string[]
  durationMs: number
}

export interface PlanSummary {
  stages: {
    name: string
    timeoutMs: number
    objects: (ObjectRef & { source: string })[]
    charts: { release: string; namespace: string; chart: string; version: string; valuesFrom: string[] }[]
    readiness: { object: ObjectRef; jsonPath: string; equals?: string }[]
    images: string[]
  }[]
  /** The site values after defaults. */
  values: Record<string, unknown>
}

export interface InstallResult {
  bundle: { name: string; version: string; digest: string }
  /** The installer's namespace (where the state is). */
  namespace: string
  mode: InstallMode
  /** True when the same bundle was already installed and ready: nothing was applied. */
  nothingToDo: boolean
  stages: StageResult[]
  pruned: { objects: ObjectRef[]; releases: ReleaseRef[] }
  preflight?: PreflightReport
  /** The plan (always present for a dry run). */
  plan?: PlanSummary
  /** Site values generated for this site (`generate: password`); each value itself is not serialised. */
  generated?: GeneratedValue[]
  durationMs: number
}

const DEFAULT_DELETE_TIMEOUT_MS = 5 * 60_000

// What a command built on this module needs, from one place.
export { FIELD_MANAGER } from './kube-client.js'
export type { PreflightReport } from './preflight.js'
export { parseSiteValues, readSiteValuesFile } from './site-values.js'
export { DEFAULT_INSTALL_NAMESPACE, type InstallState, STATE_CONFIGMAP, type StageState } from './state.js'

export async function installStages(options: InstallStagesOptions): Promise<InstallResult> {
  const started = Date.now()
  const { reader, sink, signal } = options
  const namespace = options.namespace ?? DEFAULT_INSTALL_NAMESPACE
  const metadata = reader.metadata
  const digest = `sha256:${createHash('sha256')
    .update(await reader.read(BUNDLE_JSON))
    .digest('hex')}`
  const bundle = { name: metadata.name, version: metadata.version, digest }
  const root = new Task(sink, `${options.dryRun ? 'Plan' : 'Install'} ${bundle.name} ${bundle.version}`)
  const result: InstallResult = {
    bundle,
    namespace,
    mode: 'install',
    nothingToDo: false,
    stages: [],
    pruned: { objects: [], releases: [] },
    durationMs: 0,
  }
  let workDir: string | undefined
  let lock: InstallLock | undefined
  try {
    const client = options.dryRun
      ? undefined
      : KubeClient.load({ kubeconfig: options.kubeconfig, context: options.context })
    const plan = await root.child('Load stages').run(
      async () => {
        const stages = await loadStages(reader)
        const filled = await fillGeneratedValues({
          stages,
          siteValues: options.siteValues ?? {},
          client,
          namespace,
          signal,
        })
        result.generated = filled.generated
        return planStages(stages, filled.values, { imageRegistry: options.imageRegistry })
      },
      (p) =>
        `${p.stages.length} stages, ${p.stages.reduce((n, s) => n + s.objects.length, 0)} objects, ${p.stages.reduce((n, s) => n + s.charts.length, 0)} charts`,
    )
    if (options.dryRun) {
      result.mode = 'dry-run'
      result.plan = summarisePlan(plan)
      result.stages = plan.stages.map((s) => ({
        name: s.name,
        action: 'planned',
        objects: s.objects.length,
        releases: s.charts.map((c) => `${c.namespace}/${c.release}`),
        durationMs: 0,
      }))
      result.durationMs = Date.now() - started
      root.end('done', 'dry run: the cluster was not contacted')
      return result
    }

    if (!client) throw new Error('unreachable: a cluster client exists unless this is a dry run')
    if (!options.skipPreflight) {
      result.preflight = await root
        .child('Preflight')
        .run(() => runPreflight(client, plan, { namespace, signal }), summarisePreflight)
    }
    const store = new StateStore(client, namespace)
    // One installer at a time: the lock lives in the installer's namespace, taken before the state is read.
    try {
      await store.ensureNamespace(signal)
    } catch (error) {
      throw clusterError(error, `creating the installer's namespace ${namespace}`, client.server)
    }
    lock = await InstallLock.acquire(client, namespace, {
      operation: `install ${bundle.name} ${bundle.version}`,
      sink,
      ...(signal ? { signal } : {}),
    })
    const previous = await store.read(signal)
    workDir = await mkdtemp(join(tmpdir(), 'astrago-install-'))
    const helm = new HelmRunner({
      helm: options.helm,
      kubeconfig: options.kubeconfig,
      context: options.context,
      workDir,
    })
    const run = new InstallRun(client, helm, store, plan, options, root, workDir)

    const sameInput =
      previous !== undefined &&
      previous.bundle.digest === digest &&
      previous.valuesDigest === plan.valuesDigest &&
      previous.stages.map((s) => s.name).join('\n') === plan.stages.map((s) => s.name).join('\n')
    if (sameInput && previous.status === 'installed' && !options.reapply) {
      result.mode = 'unchanged'
      result.nothingToDo = true
      for (const [i, stage] of plan.stages.entries())
        result.stages.push(await run.checkStage(stage, previous.stages[i]!))
      sink.emit({
        type: 'log',
        level: 'info',
        code: 'I_NOTHING_TO_DO',
        message: `${bundle.name} ${bundle.version} is installed and every stage is ready: nothing to do.`,
      })
      root.end('done', 'nothing to do: already installed and ready')
      result.durationMs = Date.now() - started
      return result
    }

    let state: InstallState
    let firstToApply = 0
    if (sameInput && !options.reapply) {
      result.mode = 'resume'
      state = previous
      state.status = 'installing'
      firstToApply = state.stages.findIndex((s) => s.status !== 'ready')
      if (firstToApply < 0) firstToApply = state.stages.length
      sink.emit({
        type: 'log',
        level: 'info',
        code: 'I_RESUME',
        message: `Resuming ${bundle.name} ${bundle.version} at stage ${state.stages[firstToApply]?.name ?? '(prune)'}`,
      })
    } else {
      result.mode = previous ? (sameInput ? 'reapply' : 'upgrade') : 'install'
      const now = new Date().toISOString()
      state = {
        format: STATE_FORMAT,
        bundle,
        valuesDigest: plan.valuesDigest,
        status: 'installing',
        startedAt: now,
        updatedAt: now,
        stages: plan.stages.map((s) => ({ name: s.name, status: 'pending', objects: [], releases: [] })),
        prune: previous ? leftovers(previous) : { objects: [], releases: [] },
        namespaceCreated: previous?.namespaceCreated ?? false,
      }
      if (previous && !sameInput)
        sink.emit({
          type: 'log',
          level: 'info',
          code: 'I_UPGRADE',
          message: `Upgrading ${previous.bundle.name} ${previous.bundle.version} to ${bundle.name} ${bundle.version}`,
        })
    }
    await store.write(state, signal)
    await saveGeneratedValues(client, namespace, result.generated ?? [], signal)

    for (const [i, stage] of plan.stages.entries()) {
      if (i < firstToApply) result.stages.push(await run.checkStage(stage, state.stages[i]!))
      else result.stages.push(await run.applyStage(stage, state, i))
    }

    if (state.prune.objects.length || state.prune.releases.length) {
      result.pruned = await run.prune(state)
      state.prune = { objects: [], releases: [] }
    }
    state.status = 'installed'
    state.finishedAt = new Date().toISOString()
    await store.write(state, signal)
    root.end('done', `${result.mode}: ${plan.stages.length} stages ready`)
    result.durationMs = Date.now() - started
    return result
  } catch (error) {
    const e =
      signal?.aborted && !(error instanceof AirgapError && error.code === 'E_INTERRUPTED')
        ? new AirgapError('E_INTERRUPTED', 'Interrupted; run the install again to resume where it stopped.', {
            cause: error,
          })
        : error
    root.end('failed', e instanceof Error ? e.message.split('\n')[0] : String(e))
    throw e
  } finally {
    await lock?.release()
    if (workDir) await rm(workDir, { recursive: true, force: true })
  }
}

/** What an older install recorded: everything becomes a candidate for pruning. */
function leftovers(previous: InstallState): InstallState['prune'] {
  const objects = new Map<string, ObjectRef>()
  const releases = new Map<string, ReleaseRef>()
  for (const ref of previous.prune.objects) objects.set(refKey(ref), ref)
  for (const r of previous.prune.releases) releases.set(releaseKey(r), r)
  for (const stage of previous.stages) {
    for (const ref of stage.objects) objects.set(refKey(ref), ref)
    for (const r of stage.releases) releases.set(releaseKey(r), r)
  }
  return { objects: [...objects.values()], releases: [...releases.values()] }
}

class InstallRun {
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
    private readonly options: InstallStagesOptions,
    private readonly root: Task,
    private readonly workDir: string,
  ) {}

  /** Applies one stage and waits for it; the state is written before and after. */
  async applyStage(stage: PlannedStage, state: InstallState, index: number): Promise<StageResult> {
    const started = Date.now()
    const userSignal = this.options.signal
    const task = this.root.child(`Stage ${stage.name}`)
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
    const task = this.root.child(`Stage ${stage.name} (installed; checking readiness)`)
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
  async prune(state: InstallState): Promise<InstallResult['pruned']> {
    const releases = state.prune.releases.filter((r) => !this.currentReleases.has(releaseKey(r)))
    const objects = state.prune.objects.filter((ref) => {
      if (this.current.has(refKey(ref))) return false
      if (ref.kind === 'Namespace' && this.currentNamespaces.has(ref.name)) {
        this.options.sink.emit({
          type: 'log',
          level: 'warn',
          code: 'W_PRUNE_KEPT',
          message: `Namespace ${ref.name} is no longer in the bundle but still holds its objects: kept.`,
        })
        return false
      }
      return true
    })
    if (!releases.length && !objects.length) return { objects: [], releases: [] }
    const task = this.root.child('Remove what the new bundle no longer ships', {
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
      `Helm release ${chart.namespace}/${chart.release} (${chart.chart} ${chart.version})`,
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

function releaseRefOf(chart: PlannedChart): ReleaseRef {
  return { name: chart.release, namespace: chart.namespace, chart: chart.chart, version: chart.version }
}

function ruleRef(rule: { apiVersion: string; kind: string; name: string; namespace?: string }): ObjectRef {
  return {
    apiVersion: rule.apiVersion,
    kind: rule.kind,
    name: rule.name,
    ...(rule.namespace ? { namespace: rule.namespace } : {}),
  }
}

/**
 * Uninstalls releases (newest first) and deletes objects (in reverse apply order), then waits until all are gone.
 * `keep` lists keys that must survive (objects the current bundle owns).
 */
async function removeAll(
  client: KubeClient,
  helm: HelmRunner,
  objects: ObjectRef[],
  releases: ReleaseRef[],
  o: {
    task: Task
    signal?: AbortSignal
    timeoutMs: number
    what: string
    keep?: Set<string>
    /**
     * Namespaces are deleted but not waited for here: they go when the namespace controller has swept them (several
     * seconds each), so the caller waits for all of them at once at the end.
     */
    deferNamespaces?: ObjectRef[]
  },
): Promise<{ objects: ObjectRef[]; releases: ReleaseRef[] }> {
  const gone: ObjectRef[] = []
  const removedReleases: ReleaseRef[] = []
  let done = 0
  for (const release of [...releases].reverse()) {
    const sub = o.task.child(`Uninstall release ${release.namespace}/${release.name}`)
    try {
      const manifest = (await helm.manifest(release.name, release.namespace, o.signal)) ?? []
      const existed = await helm.uninstall(release.name, release.namespace, o.signal)
      for (const obj of manifest) {
        const ref = refOf(obj)
        if (!ref.namespace && (await client.resourceOf(ref.apiVersion, ref.kind, o.signal))?.namespaced)
          ref.namespace = release.namespace
        if (!o.keep?.has(refKey(ref))) gone.push(ref)
      }
      if (existed) removedReleases.push(release)
      sub.end(existed ? 'done' : 'skipped', existed ? undefined : 'not installed')
    } catch (error) {
      sub.end('failed', error instanceof Error ? error.message.split('\n')[0] : String(error))
      throw error instanceof AirgapError
        ? error
        : clusterError(error, `uninstalling ${release.namespace}/${release.name}`, client.server)
    }
    o.task.progress(++done, objects.length + releases.length, 'items')
  }
  const deleted: ObjectRef[] = []
  for (const ref of [...objects].reverse()) {
    try {
      if (await client.delete(ref, o.signal)) deleted.push(ref)
    } catch (error) {
      throw clusterError(error, `deleting ${formatRef(ref)}`, client.server)
    }
    if (o.deferNamespaces && ref.kind === 'Namespace' && ref.apiVersion === 'v1') o.deferNamespaces.push(ref)
    else gone.push(ref)
    o.task.progress(++done, objects.length + releases.length, 'items')
  }
  const wait = o.task.child(`Wait until ${gone.length} objects are gone`)
  try {
    await waitUntilGone(gone, {
      client,
      deadline: Date.now() + o.timeoutMs,
      timeoutMs: o.timeoutMs,
      task: wait,
      signal: o.signal,
      what: o.what,
    })
    wait.end('done')
  } catch (error) {
    wait.end('failed', error instanceof Error ? error.message.split('\n')[0] : String(error))
    throw error
  }
  return { objects: deleted, releases: removedReleases }
}

function summarisePlan(plan: InstallPlan): PlanSummary {
  return {
    values: plan.values,
    stages: plan.stages.map((s) => ({
      name: s.name,
      timeoutMs: s.timeoutMs,
      objects: s.objects.map((o) => ({ ...refOf(o.object), source: o.source })),
      charts: s.charts.map((c) => ({
        release: c.release,
        namespace: c.namespace,
        chart: c.chart,
        version: c.version,
        valuesFrom: c.values.map((v) => v.source),
      })),
      readiness: s.readiness.map((r) => ({
        object: ruleRef(r),
        jsonPath: r.jsonPath,
        ...(r.equals !== undefined ? { equals: r.equals } : {}),
      })),
      images: s.images,
    })),
  }
}

// --- uninstall and status ---------------------------------------------------------------------------------------

export interface UninstallStagesOptions {
  kubeconfig: string
  context?: string
  helm: string
  namespace?: string
  /** How long to wait for each stage's objects to go (default 5 min). */
  timeoutMs?: number
  /** Also remove the generated site values (passwords), which are kept by default for the data volumes. */
  purge?: boolean
  sink: EventSink
  signal?: AbortSignal
}

export interface UninstallResult {
  /** The bundle that was installed; undefined when nothing was. */
  bundle?: { name: string; version: string; digest: string }
  namespace: string
  nothingToDo: boolean
  removed: { objects: ObjectRef[]; releases: ReleaseRef[] }
  /** What was kept on purpose (the generated site values, unless purge). */
  kept?: ObjectRef[]
  durationMs: number
}

/**
 * Removes what the recorded install applied, stage by stage in reverse order (releases uninstalled, objects deleted
 * in reverse apply order, waiting until they are gone), then the state ConfigMap (and the installer's namespace if
 * the installer created it). Works from the state alone: the bundle is not needed. A stopped uninstall can be rerun.
 */
export async function uninstallStages(options: UninstallStagesOptions): Promise<UninstallResult> {
  const started = Date.now()
  const namespace = options.namespace ?? DEFAULT_INSTALL_NAMESPACE
  const client = KubeClient.load({ kubeconfig: options.kubeconfig, context: options.context })
  const store = new StateStore(client, namespace)
  const state = await store.read(options.signal)
  const result: UninstallResult = {
    namespace,
    nothingToDo: state === undefined,
    removed: { objects: [], releases: [] },
    durationMs: 0,
  }
  if (!state) {
    // Nothing installed; what an earlier uninstall kept (the generated passwords) goes with --purge.
    const { removed } = options.purge
      ? await store.remove(undefined, { purge: true, ...(options.signal ? { signal: options.signal } : {}) })
      : { removed: [] }
    result.removed.objects.push(...removed.filter((r) => r.kind === 'Secret'))
    options.sink.emit({
      type: 'log',
      level: 'info',
      code: 'I_NOTHING_TO_DO',
      message: `No install state in ${namespace}/${STATE_CONFIGMAP}: nothing to uninstall${result.removed.objects.length ? ` (removed the generated passwords ${namespace}/${GENERATED_SECRET})` : ''}.`,
    })
    result.durationMs = Date.now() - started
    return result
  }
  result.bundle = state.bundle
  const root = new Task(options.sink, `Uninstall ${state.bundle.name} ${state.bundle.version}`)
  const lock = await InstallLock.acquire(client, namespace, {
    operation: `uninstall ${state.bundle.name} ${state.bundle.version}`,
    sink: options.sink,
    ...(options.signal ? { signal: options.signal } : {}),
  })
  const workDir = await mkdtemp(join(tmpdir(), 'astrago-uninstall-'))
  try {
    const helm = new HelmRunner({
      helm: options.helm,
      kubeconfig: options.kubeconfig,
      context: options.context,
      workDir,
    })
    const timeoutMs = options.timeoutMs ?? DEFAULT_DELETE_TIMEOUT_MS
    const groups: { name: string; objects: ObjectRef[]; releases: ReleaseRef[]; clear: () => void }[] = [
      {
        name: 'leftovers of an older bundle',
        ...state.prune,
        clear: () => {
          state.prune = { objects: [], releases: [] }
        },
      },
      ...[...state.stages].reverse().map((stage) => ({
        name: `stage ${stage.name}`,
        objects: stage.objects,
        releases: stage.releases,
        clear: () => {
          Object.assign(stage, { status: 'pending', objects: [], releases: [] })
          delete stage.startedAt
          delete stage.endedAt
          delete stage.error
        },
      })),
    ]
    const namespaces: ObjectRef[] = []
    for (const group of groups) {
      if (!group.objects.length && !group.releases.length) continue
      const task = root.child(`Remove ${group.name}`, {
        total: group.objects.length + group.releases.length,
        unit: 'items',
      })
      const removed = await task.run(
        () =>
          removeAll(client, helm, group.objects, group.releases, {
            task,
            signal: options.signal,
            timeoutMs,
            what: `Removing ${group.name}`,
            deferNamespaces: namespaces,
          }),
        (r) => `${r.objects.length} objects, ${r.releases.length} releases removed`,
      )
      result.removed.objects.push(...removed.objects)
      result.removed.releases.push(...removed.releases)
      group.clear()
      state.status = 'uninstalling'
      await store.write(state, options.signal)
    }
    const { removed: stateObjects, kept } = await store.remove(state, {
      ...(options.purge ? { purge: true } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    })
    result.kept = kept
    for (const ref of kept)
      options.sink.emit({
        type: 'log',
        level: 'info',
        code: 'I_KEPT_GENERATED',
        message: `Kept ${formatRef(ref)}: the passwords generated for this site, which data volumes that outlive the install may still use; a reinstall reuses them. uninstall --purge removes them.`,
      })
    await waitUntilGone([...namespaces, ...stateObjects], {
      client,
      deadline: Date.now() + timeoutMs,
      timeoutMs,
      task: root,
      signal: options.signal,
      what: 'Removing the namespaces and the install state',
    })
    root.end(
      'done',
      `${result.removed.objects.length} objects, ${result.removed.releases.length} releases removed`,
    )
    result.durationMs = Date.now() - started
    return result
  } catch (error) {
    const e = options.signal?.aborted
      ? new AirgapError('E_INTERRUPTED', 'Uninstall interrupted; run it again to continue.', { cause: error })
      : error
    root.end('failed', e instanceof Error ? e.message.split('\n')[0] : String(e))
    throw e
  } finally {
    await lock.release()
    await rm(workDir, { recursive: true, force: true })
  }
}

export interface ReadInstallStateOptions {
  kubeconfig: string
  context?: string
  namespace?: string
  signal?: AbortSignal
}

/** The recorded install state, or undefined when nothing is installed. */
export async function readInstallState(options: ReadInstallStateOptions): Promise<InstallState | undefined> {
  const client = KubeClient.load({ kubeconfig: options.kubeconfig, context: options.context })
  return await new StateStore(client, options.namespace ?? DEFAULT_INSTALL_NAMESPACE).read(options.signal)
}
