import { BundleReader } from '../bundle/reader.js'
import { verifyBundle } from '../bundle/verify.js'
import { findHelm } from '../charts/discover-images.js'
import { type InstallResult, installStages } from '../deploy/install-stages.js'
import { readSiteValuesFile } from '../deploy/site-values.js'
import { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { createRegistryClient } from '../oci/create-registry-client.js'
import type { Credential } from '../oci/docker-config.js'
import { type PushResult, pushBundle } from '../push/push-bundle.js'
import { parsePushTarget } from '../push/target.js'
import { type ServingBundle, serveBundle } from '../serve/serve-bundle.js'

/**
 * `install`: the site's whole job, in order. Check the bundle; serve it (registry + file server) so the cluster can
 * pull; optionally copy its images into the site's own registry (Harbor); then apply the stages with readiness waits,
 * resuming where an earlier run stopped. Each step is a core module of its own; this only sequences them.
 */
export interface InstallBundleOptions {
  bundle: string
  verify: 'quick' | 'full'
  kubeconfig: string
  context?: string
  valuesFile?: string
  helm?: string
  namespace?: string
  /** Serve the bundle while installing (default); false when an existing server or registry is used. */
  serve?: {
    host?: string
    port?: number
    advertise?: string[]
    stateDir?: string
    insecure?: boolean
    htpasswdFile?: string
    /** Keep serving after the stages are ready, until interrupted. */
    keep?: boolean
  }
  push?: {
    registry: string
    prefix?: string
    credentials?: Record<string, Credential>
    insecure?: boolean
    caFiles?: string[]
    concurrency?: number
    /** Point plain manifests' images at the pushed copies. */
    relocateImages?: boolean
  }
  dryRun?: boolean
  skipPreflight?: boolean
  reapply?: boolean
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
}

export interface InstallBundleResult {
  install: InstallResult
  serving?: Omit<ServingBundle, 'stop'>
  push?: PushResult
}

export async function installBundle(options: InstallBundleOptions): Promise<InstallBundleResult> {
  const { sink, signal } = options
  const helm = options.dryRun ? (options.helm ?? 'helm') : findHelm(options.helm)
  const siteValues = options.valuesFile ? await readSiteValuesFile(options.valuesFile) : {}

  if (options.dryRun) {
    const reader = await BundleReader.open(options.bundle)
    try {
      const install = await installStages({
        reader,
        kubeconfig: options.kubeconfig,
        context: options.context,
        siteValues,
        helm,
        namespace: options.namespace,
        dryRun: true,
        sink,
        signal,
      })
      return { install }
    } finally {
      await reader.close()
    }
  }

  let serving: ServingBundle | undefined
  if (options.serve) {
    serving = await serveBundle({
      bundle: options.bundle,
      ...options.serve,
      verify: options.verify,
      sink,
      signal,
    })
  } else {
    await verifyBundle({ path: options.bundle, mode: options.verify, sink, signal })
  }
  const reader = await BundleReader.open(options.bundle)
  try {
    let pushed: PushResult | undefined
    let imageRegistry: string | undefined
    if (options.push) {
      const { target, plainHttp } = parsePushTarget(options.push.registry, options.push.prefix)
      const { http, registry } = await createRegistryClient({
        credentials: options.push.credentials,
        insecureRegistries: options.push.insecure || plainHttp ? [target.registry] : [],
        caFiles: options.push.caFiles,
        concurrency: options.push.concurrency,
        toolVersion: options.toolVersion,
        sink,
      })
      try {
        pushed = await pushBundle({
          reader,
          registry,
          target,
          concurrency: options.push.concurrency,
          sink,
          signal,
        })
      } finally {
        await http.close()
      }
      if (options.push.relocateImages)
        imageRegistry = target.prefix ? `${target.registry}/${target.prefix}` : target.registry
    }
    const install = await installStages({
      reader,
      kubeconfig: options.kubeconfig,
      context: options.context,
      siteValues,
      helm,
      namespace: options.namespace,
      imageRegistry,
      skipPreflight: options.skipPreflight,
      reapply: options.reapply,
      sink,
      signal,
    })
    if (serving && options.serve?.keep) {
      const wait = new Task(sink, `Serving ${serving.url} for the cluster (Ctrl-C to stop)`)
      await new Promise<void>((resolve) => {
        if (!signal || signal.aborted) return resolve()
        signal.addEventListener('abort', () => resolve(), { once: true })
      })
      wait.end('done')
    }
    const { stop: _stop, ...servingInfo } = serving ?? { stop: undefined }
    return {
      install,
      ...(serving ? { serving: servingInfo as Omit<ServingBundle, 'stop'> } : {}),
      push: pushed,
    }
  } finally {
    await reader.close()
    await serving?.stop()
  }
}
