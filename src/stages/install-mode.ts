import { type ObjectRef, type ReleaseRef, refKey, releaseKey } from './objects.js'
import type { InstallState } from './state.js'

/**
 * What an install run does, decided from the install state recorded in the cluster and what this run would install
 * (the bundle's digest, the site values' digest and the stage names). Pure: no cluster, no clock, no events, so every
 * branch has a unit test. The same input is the same bundle digest, the same values digest and the same stages in the
 * same order.
 *   - nothing recorded: `install`, every stage applied, nothing to prune;
 *   - same input, recorded as installed, no --reapply: `unchanged`, every stage only checked for readiness;
 *   - same input otherwise (stopped, failed, or an uninstall that stopped half way), no --reapply: `resume` at the
 *     first stage that is not ready (the stages before it are only checked; when all are ready only the prune is left);
 *   - same input with --reapply: `reapply`, every stage applied again;
 *   - a different input (another bundle or other site values), --reapply or not: `upgrade`, every stage applied.
 * `reapply` and `upgrade` make everything the recorded install applied a candidate for pruning; the run keeps what
 * the current bundle still owns. A dry run never gets here: it stops at the plan, before the cluster is contacted.
 */
export type InstallMode = 'install' | 'resume' | 'upgrade' | 'reapply' | 'unchanged' | 'dry-run'

export interface InstallModeInput {
  /** The recorded install state; undefined when nothing is installed. */
  previous: InstallState | undefined
  /** The digest of the bundle to install (sha256 of its bundle.json). */
  digest: string
  /** The digest of the effective site values (from the plan). */
  valuesDigest: string
  /** The bundle's stage names, in order. */
  stageNames: readonly string[]
  /** Apply every stage again even when the same input is installed. */
  reapply?: boolean
}

export type InstallDecision =
  /** previous: the recorded state, whose stages are checked. */
  | { mode: 'unchanged'; previous: InstallState }
  /**
   * previous: the recorded state, which the run carries on; firstToApply: the index of its first stage that is not
   * ready, or the number of stages when only the prune is left.
   */
  | { mode: 'resume'; previous: InstallState; firstToApply: number }
  /** Every stage applied from a new state; prune: what the recorded install applied (candidates for removal). */
  | { mode: 'install' | 'upgrade' | 'reapply'; prune: InstallState['prune'] }

export function decideInstallMode(input: InstallModeInput): InstallDecision {
  const { previous } = input
  if (!previous) return { mode: 'install', prune: { objects: [], releases: [] } }
  const sameInput =
    previous.bundle.digest === input.digest &&
    previous.valuesDigest === input.valuesDigest &&
    previous.stages.map((s) => s.name).join('\n') === input.stageNames.join('\n')
  if (sameInput && !input.reapply) {
    if (previous.status === 'installed') return { mode: 'unchanged', previous }
    const firstToApply = previous.stages.findIndex((s) => s.status !== 'ready')
    return {
      mode: 'resume',
      previous,
      firstToApply: firstToApply < 0 ? previous.stages.length : firstToApply,
    }
  }
  return { mode: sameInput ? 'reapply' : 'upgrade', prune: pruneCandidates(previous) }
}

/**
 * Everything a recorded install applied, and what it had still to prune, each once (first seen order): the objects
 * and releases a new run removes unless the bundle it installs still owns them.
 */
export function pruneCandidates(previous: InstallState): InstallState['prune'] {
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
