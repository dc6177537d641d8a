import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fullBundleDigest } from '../bundle/delta.js'
import { BUNDLE_JSON } from '../bundle/layout.js'
import { AirgapError } from '../errors.js'
import { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { HelmRunner } from '../helm/helm-runner.js'
import {
  fillGeneratedValues,
  type GeneratedValue,
  generatedPaths,
  saveGeneratedValues,
} from './generated-values.js'
import { InstallLock } from './install-lock.js'
import { decideInstallMode, type InstallMode } from './install-mode.js'
import { InstallRun, type StageResult } from './install-run.js'
import { clusterError, KubeClient } from './kube-client.js'
import { loadStages, type StageSource } from './load-stages.js'
import type { ObjectRef, ReleaseRef } from './objects.js'
import { enabledStages } from './optional-stages.js'
import { planStages } from './plan-stages.js'
import { type PlanSummary, summarisePlan } from './plan-summary.js'
import { type PreflightReport, runPreflight, summarisePreflight } from './preflight.js'
import { redactSecretValues } from './redact-values.js'
import { DEFAULT_INSTALL_NAMESPACE, type InstallState, STATE_FORMAT, StateStore } from './state.js'

/**
 * Applies a bundle's stages to a cluster, in order, each one waited for until ready, with the state kept in the
 * cluster so that:
 *   - an install stopped anywhere (Ctrl-C, kill -9, a stage that timed out) resumes at the first unfinished stage;
 *     the stages before it are only checked for readiness, not applied again;
 *   - a rerun of a finished install with the same bundle and site values checks readiness and changes nothing;
 *   - a different bundle (or different site values) applies every stage again (server-side apply is idempotent),
 *     then removes the objects and Helm releases the old bundle had and the new one no longer ships.
 * `dryRun` returns the plan without contacting the cluster. Progress is one task per stage, with its objects, releases
 * and waits as subtasks. What a run does is decided in install-mode.ts, the work of a stage is done in install-run.ts;
 * uninstall-stages.ts and install-status.ts hold uninstall and status.
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
  /** How long the install lock's Lease lasts, in seconds (default 60); tests shorten it to lose the lock quickly. */
  lockLeaseSeconds?: number
  sink: EventSink
  signal?: AbortSignal
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

// What a command built on this module needs, from one place.
export type { InstallMode } from './install-mode.js'
export type { StageResult } from './install-run.js'
export { FIELD_MANAGER } from './kube-client.js'
export type { PlanSummary } from './plan-summary.js'
export type { PreflightReport } from './preflight.js'
export { parseSiteValues, readSiteValuesFile } from './site-values.js'
export { DEFAULT_INSTALL_NAMESPACE, type InstallState, STATE_CONFIGMAP, type StageState } from './state.js'

export async function installStages(options: InstallStagesOptions): Promise<InstallResult> {
  const started = Date.now()
  const { reader, sink, signal } = options
  const namespace = options.namespace ?? DEFAULT_INSTALL_NAMESPACE
  const metadata = reader.metadata
  const digest = fullBundleDigest(metadata, await reader.read(BUNDLE_JSON))
  const bundle = { name: metadata.name, version: metadata.version, digest }
  const root = new Task(
    sink,
    'install',
    `${options.dryRun ? 'Plan' : 'Install'} ${bundle.name} ${bundle.version}`,
    { data: { name: bundle.name, version: bundle.version, dryRun: Boolean(options.dryRun) } },
  )
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
  let secretPaths: string[][] = []
  try {
    const client = options.dryRun
      ? undefined
      : KubeClient.load({ kubeconfig: options.kubeconfig, context: options.context })
    const plan = await root.child('install.load', 'Load stages').run(
      async () => {
        // Optional stages the site values leave off are dropped before their values are checked or generated.
        const stages = enabledStages(await loadStages(reader), options.siteValues ?? {})
        secretPaths = generatedPaths(stages)
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
      const summary = summarisePlan(plan)
      result.plan = { ...summary, values: redactSecretValues(summary.values, secretPaths) }
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
        .child('install.preflight', 'Preflight')
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
      ...(options.lockLeaseSeconds ? { leaseSeconds: options.lockLeaseSeconds } : {}),
      lostWording: { stopped: 'applying', rerun: 'run the install again to resume' },
    })
    // Losing the lock (another holder took the Lease) stops everything still running: nothing more is applied.
    const held = signal ? AbortSignal.any([signal, lock.lost]) : lock.lost
    const previous = await store.read(held)
    workDir = await mkdtemp(join(tmpdir(), 'astrago-install-'))
    const helm = new HelmRunner({
      helm: options.helm,
      kubeconfig: options.kubeconfig,
      context: options.context,
      workDir,
    })
    const run = new InstallRun(client, helm, store, plan, { ...options, signal: held }, root, workDir)

    const decision = decideInstallMode({
      previous,
      digest,
      valuesDigest: plan.valuesDigest,
      stageNames: plan.stages.map((s) => s.name),
      reapply: options.reapply,
    })
    result.mode = decision.mode
    if (decision.mode === 'unchanged') {
      result.nothingToDo = true
      for (const [i, stage] of plan.stages.entries())
        result.stages.push(await run.checkStage(stage, decision.previous.stages[i]!))
      sink.emit({
        type: 'log',
        level: 'info',
        code: 'I_NOTHING_TO_DO',
        message: `${bundle.name} ${bundle.version} is installed and every stage is ready: nothing to do.`,
        data: { namespace },
      })
      root.end('done', 'nothing to do: already installed and ready')
      result.durationMs = Date.now() - started
      return result
    }

    let state: InstallState
    let firstToApply = 0
    if (decision.mode === 'resume') {
      state = decision.previous
      state.status = 'installing'
      firstToApply = decision.firstToApply
      sink.emit({
        type: 'log',
        level: 'info',
        code: 'I_RESUME',
        message: `Resuming ${bundle.name} ${bundle.version} at stage ${state.stages[firstToApply]?.name ?? '(prune)'}`,
        data: {
          bundle: bundle.name,
          version: bundle.version,
          stage: state.stages[firstToApply]?.name ?? '(prune)',
        },
      })
    } else {
      const now = new Date().toISOString()
      state = {
        format: STATE_FORMAT,
        bundle,
        valuesDigest: plan.valuesDigest,
        status: 'installing',
        startedAt: now,
        updatedAt: now,
        stages: plan.stages.map((s) => ({ name: s.name, status: 'pending', objects: [], releases: [] })),
        prune: decision.prune,
        namespaceCreated: previous?.namespaceCreated ?? false,
      }
      if (previous && decision.mode === 'upgrade')
        sink.emit({
          type: 'log',
          level: 'info',
          code: 'I_UPGRADE',
          message: `Upgrading ${previous.bundle.name} ${previous.bundle.version} to ${bundle.name} ${bundle.version}`,
          data: { from: previous.bundle.version, to: bundle.version },
        })
    }
    await store.write(state, held)
    await saveGeneratedValues(client, namespace, result.generated ?? [], held)

    for (const [i, stage] of plan.stages.entries()) {
      held.throwIfAborted()
      if (i < firstToApply) result.stages.push(await run.checkStage(stage, state.stages[i]!))
      else result.stages.push(await run.applyStage(stage, state, i))
    }

    held.throwIfAborted()
    if (state.prune.objects.length || state.prune.releases.length) {
      result.pruned = await run.prune(state)
      state.prune = { objects: [], releases: [] }
    }
    state.status = 'installed'
    state.finishedAt = new Date().toISOString()
    await store.write(state, held)
    root.end('done', `${result.mode}: ${plan.stages.length} stages ready`)
    result.durationMs = Date.now() - started
    return result
  } catch (error) {
    const lost = lock?.lost.aborted && !signal?.aborted ? (lock.lost.reason as AirgapError) : undefined
    const e = lost
      ? lost
      : signal?.aborted && !(error instanceof AirgapError && error.code === 'E_INTERRUPTED')
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
