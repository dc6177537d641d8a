import { KubeClient } from './kube-client.js'
import { DEFAULT_INSTALL_NAMESPACE, type InstallState, StateStore } from './state.js'

/**
 * What is installed: the install state recorded in the cluster, read without the bundle (for `status` and the
 * install audit).
 */

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
