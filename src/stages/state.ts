import { AirgapError } from '../errors.js'
import { GENERATED_SECRET } from './generated-values.js'
import { clusterError, type KubeClient } from './kube-client.js'
import type { ObjectRef, ReleaseRef } from './objects.js'

/**
 * The install state lives in the cluster, in the ConfigMap `astrago-airgap-state` of the installer's namespace, so
 * any machine with the kubeconfig (and `kubectl get cm -o yaml`) can see what was installed and where an install
 * stopped. It is written before each stage starts and after it ends. It records the bundle (name, version and the
 * digest of its bundle.json, which covers every member), a digest of the site values, and per stage its status, its
 * times, and the objects and Helm releases it applied: enough to resume, to prune what a newer bundle no longer
 * ships, and to uninstall without the bundle.
 */
export const STATE_CONFIGMAP = 'astrago-airgap-state'
export const STATE_KEY = 'state.json'
export const STATE_FORMAT = 'astrago-airgap.install-state/v1'
export const DEFAULT_INSTALL_NAMESPACE = 'astrago-airgap'

export type StageStatus = 'pending' | 'applying' | 'ready' | 'failed'

export interface StageState {
  name: string
  status: StageStatus
  startedAt?: string
  endedAt?: string
  /** The error that stopped the stage, when it failed. */
  error?: string
  /** Every plain object of the stage, in apply order. */
  objects: ObjectRef[]
  releases: ReleaseRef[]
}

export interface InstallState {
  format: typeof STATE_FORMAT
  bundle: { name: string; version: string; digest: string }
  /** sha256 of the effective site values and install options that shape the objects (image registry). */
  valuesDigest: string
  /**
   * installing: started and not finished (or interrupted); installed: every stage ready; failed: a stage failed;
   * uninstalling: an uninstall removed some stages (their status is pending again) and did not finish.
   */
  status: 'installing' | 'installed' | 'failed' | 'uninstalling'
  startedAt: string
  updatedAt: string
  finishedAt?: string
  stages: StageState[]
  /** Objects and releases of an older bundle that the current one no longer ships, removed once it is installed. */
  prune: { objects: ObjectRef[]; releases: ReleaseRef[] }
  /** The installer created its namespace (so uninstall removes it too). */
  namespaceCreated: boolean
}

export class StateStore {
  private namespaceChecked = false
  private createdNamespace = false

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
  ) {}

  /** The recorded state, or undefined when nothing was installed (or it was uninstalled). */
  async read(signal?: AbortSignal): Promise<InstallState | undefined> {
    let configMap: Awaited<ReturnType<KubeClient['get']>>
    try {
      configMap = await this.client.get(this.ref(), signal)
    } catch (error) {
      throw clusterError(
        error,
        `reading the install state (ConfigMap ${this.namespace}/${STATE_CONFIGMAP})`,
        this.client.server,
      )
    }
    if (!configMap) return undefined
    const text = (configMap.data as Record<string, string> | undefined)?.[STATE_KEY]
    let state: InstallState | undefined
    try {
      state = text ? (JSON.parse(text) as InstallState) : undefined
    } catch {}
    if (!state || state.format !== STATE_FORMAT || !Array.isArray(state.stages)) {
      throw new AirgapError(
        'E_CLUSTER',
        `The install state ConfigMap ${this.namespace}/${STATE_CONFIGMAP} is not one this installer wrote (or it was edited).`,
        {
          hints: [
            `Inspect it with: kubectl get configmap ${STATE_CONFIGMAP} -n ${this.namespace} -o yaml`,
            'If it is damaged beyond repair, delete it: the next install then applies every stage again.',
          ],
        },
      )
    }
    state.prune ??= { objects: [], releases: [] }
    return state
  }

  /**
   * Records the state (server-side apply of the ConfigMap). Creates the installer's namespace the first time if it
   * is missing, and notes that in the state.
   */
  async write(state: InstallState, signal?: AbortSignal): Promise<void> {
    try {
      await this.ensureNamespace(signal)
      if (this.createdNamespace) state.namespaceCreated = true
      state.updatedAt = new Date().toISOString()
      await this.client.apply(
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: {
            name: STATE_CONFIGMAP,
            namespace: this.namespace,
            labels: { 'app.kubernetes.io/managed-by': 'astrago-airgap' },
            annotations: {
              'airgap.astrago.io/bundle': `${state.bundle.name} ${state.bundle.version}`,
              'airgap.astrago.io/status': state.status,
            },
          },
          data: { [STATE_KEY]: `${JSON.stringify(state, null, 1)}\n` },
        },
        signal,
      )
    } catch (error) {
      throw clusterError(
        error,
        `recording the install state in ${this.namespace}/${STATE_CONFIGMAP}`,
        this.client.server,
      )
    }
  }

  /** Creates the installer's namespace when it is missing (once per store); the state then records that. */
  async ensureNamespace(signal?: AbortSignal): Promise<void> {
    if (this.namespaceChecked) return
    const ns = { apiVersion: 'v1', kind: 'Namespace', name: this.namespace }
    if (!(await this.client.get(ns, signal))) {
      await this.client.apply(
        {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'astrago-airgap' } },
        },
        signal,
      )
      this.createdNamespace = true
    }
    this.namespaceChecked = true
  }

  /**
   * Removes the state ConfigMap. The generated site values (Secret GENERATED_SECRET) are kept unless `purge`: data
   * volumes that outlive the install (MariaDB's, Keycloak's PostgreSQL) still use those passwords, and a reinstall
   * reuses them. The installer's namespace goes when the installer created it and nothing is kept in it.
   */
  async remove(
    state: InstallState | undefined,
    options: { purge?: boolean; signal?: AbortSignal } = {},
  ): Promise<{ removed: ObjectRef[]; kept: ObjectRef[] }> {
    const { signal } = options
    const removed: ObjectRef[] = [this.ref()]
    const kept: ObjectRef[] = []
    const generated = { apiVersion: 'v1', kind: 'Secret', namespace: this.namespace, name: GENERATED_SECRET }
    try {
      await this.client.delete(this.ref(), signal)
      if (await this.client.get(generated, signal)) {
        if (options.purge) {
          await this.client.delete(generated, signal)
          removed.push(generated)
        } else kept.push(generated)
      }
      if (state?.namespaceCreated && kept.length === 0) {
        const ns = { apiVersion: 'v1', kind: 'Namespace', name: this.namespace }
        await this.client.delete(ns, signal)
        removed.push(ns)
      }
    } catch (error) {
      throw clusterError(
        error,
        `removing the install state ${this.namespace}/${STATE_CONFIGMAP}`,
        this.client.server,
      )
    }
    return { removed, kept }
  }

  ref(): ObjectRef {
    return { apiVersion: 'v1', kind: 'ConfigMap', namespace: this.namespace, name: STATE_CONFIGMAP }
  }
}
