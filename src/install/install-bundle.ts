import { readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join, resolve as resolvePath } from 'node:path'
import type { AuditResult } from '../audit/audit-images.js'
import { auditInstall } from '../audit/audit-install.js'
import { BundleReader } from '../bundle/reader.js'
import { readBundleHead } from '../bundle/sign-head.js'
import { checkBundleSignature } from '../bundle/sign-verify.js'
import { verifyBundle } from '../bundle/verify.js'
import { Task } from '../events/tasks.js'
import { type EventSink, logEvent } from '../events/types.js'
import { resolveHelm } from '../helm/bundled-helm.js'
import { createRegistryClient } from '../oci/create-registry-client.js'
import type { Credential } from '../oci/docker-config.js'
import { pushBundle } from '../push/push-bundle.js'
import type { PushResult } from '../push/push-result.js'
import { parsePushTarget } from '../push/target.js'
import { pullRegistryOf, writePullRegistry } from '../serve/pull-registry.js'
import {
  defaultStateDir,
  nodePackageRepositories,
  type ServingBundle,
  serveBundle,
} from '../serve/serve-bundle.js'
import { type InstallResult, installStages } from '../stages/install-stages.js'
import { readSiteValuesFile } from '../stages/site-values.js'
import { checkFreeSpace, checkPortFree } from './preflight-machine.js'
import { siteBuiltins, withSiteBuiltins } from './site-builtins.js'

/**
 * `install`: the site's whole job, in order. Check the bundle; serve it (registry + file server) so the cluster can
 * pull; optionally copy its images into the site's own registry (Harbor); then apply the stages with readiness waits,
 * resuming where an earlier run stopped. Each step is a core module of its own; this only sequences them.
 */
export interface InstallBundleOptions {
  bundle: string
  /** The base of a delta bundle: read (served, pushed, verified) together with it as the full bundle. */
  base?: string
  verify: 'quick' | 'full'
  /** Trusted public key files: bundle.json must be signed by one of them, checked before anything else. */
  keys?: string[]
  kubeconfig: string
  context?: string
  valuesFile?: string
  /** The helm binary; default: the one the bundle carries for this platform, else helm on PATH (see resolveHelm). */
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
    users?: string[]
    /** Keep serving after the stages are ready, until interrupted. */
    keep?: boolean
  }
  push?: {
    registry: string
    prefix?: string
    credentials?: Record<string, Credential>
    /**
     * Registry hosts (host[:port]) spoken to over plain HTTP or without TLS verification (--insecure-registry): only
     * these; the --push-to target is one of them only when it is named here or given as an http:// URL.
     */
    insecureRegistries?: string[]
    caFiles?: string[]
    concurrency?: number
    /** Point plain manifests' images at the pushed copies. */
    relocateImages?: boolean
  }
  /**
   * Without `serve`: the site server already running (its https URL); its CA is read from the state folder. Default:
   * https://<first advertised name or this host>:8443.
   */
  siteUrl?: string
  /** The site state folder (site CA, helm unpacked from the bundle) when not serving; default beside the bundle. */
  stateDir?: string
  dryRun?: boolean
  skipPreflight?: boolean
  /** Skip the air-gap audit after the stages (default: run it; a missing image fails the install). */
  noAudit?: boolean
  reapply?: boolean
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
}

export interface InstallBundleResult {
  install: InstallResult
  serving?: Omit<ServingBundle, 'stop' | 'pullFrom'>
  push?: PushResult
  /** The air-gap audit of the installed namespaces (absent with noAudit). */
  audit?: AuditResult
  /** Where the nodes' containerd pulls the platform's images from from now on. */
  pullFrom?: PullSource
}

export interface PullSource {
  /** `registry`: the --push-to registry the workloads were relocated to; `served`: the server this install ran;
   * `site-server`: a server running apart from this command (--no-serve, --site-url). */
  kind: 'registry' | 'served' | 'site-server'
  /** The registry host (and prefix), or the site server's URL. */
  where: string
  /** True when it is this command's own server and it stops when the command ends (no --keep-serving). */
  endsWithCommand: boolean
}

/** Code of the warning that nodes pull from a server that ends with the command. */
export const PULL_SERVER_ENDS = 'W_PULL_SERVER_ENDS' as const

/**
 * Where nodes pull from: the relocated registry wins (the workloads name it); otherwise containerd's mirrors
 * (node-setup hosts.toml) send every pull to the site server: the one served here, or the one running apart.
 */
export function pullSource(options: {
  imageRegistry?: string
  serving?: { url: string }
  keepServing?: boolean
  siteUrl?: string
}): PullSource | undefined {
  if (options.imageRegistry) return { kind: 'registry', where: options.imageRegistry, endsWithCommand: false }
  if (options.serving)
    return { kind: 'served', where: options.serving.url, endsWithCommand: !options.keepServing }
  if (options.siteUrl) return { kind: 'site-server', where: options.siteUrl, endsWithCommand: false }
  return undefined
}

export async function installBundle(options: InstallBundleOptions): Promise<InstallBundleResult> {
  const { sink, signal } = options
  if (options.keys?.length) {
    await checkBundleSignature(await readBundleHead(options.bundle), {
      path: options.bundle,
      keys: options.keys,
      sink,
    })
  }
  const siteValues = options.valuesFile ? await readSiteValuesFile(options.valuesFile) : {}

  if (options.dryRun) {
    const reader = await BundleReader.open(options.bundle, baseOf(options))
    try {
      // The server is not started for a dry run: its address and CA stand as placeholders.
      const builtins = siteBuiltins({
        server:
          options.siteUrl ??
          `https://${options.serve?.advertise?.[0] ?? 'site-server'}:${options.serve?.port ?? 8443}`,
        caPem: '(the site CA, known once the server runs)',
        repositories: await nodePackageRepositories(reader),
      })
      const install = await installStages({
        reader,
        kubeconfig: options.kubeconfig,
        context: options.context,
        siteValues: withSiteBuiltins(siteValues, builtins, options.valuesFile),
        helm: options.helm ?? 'helm',
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

  const stateDir = resolvePath(options.serve?.stateDir ?? options.stateDir ?? defaultStateDir(options.bundle))
  if (options.serve) await checkPortFree(options.serve.host ?? '0.0.0.0', options.serve.port ?? 8443)
  await checkFreeSpace({ dir: stateDir, sink })

  let serving: ServingBundle | undefined
  if (options.serve) {
    serving = await serveBundle({
      bundle: options.bundle,
      ...baseOf(options),
      ...options.serve,
      verify: options.verify,
      sink,
      signal,
    })
  } else {
    await verifyBundle({
      path: options.bundle,
      ...baseOf(options),
      mode: options.verify,
      keys: options.keys ?? [],
      sink,
      signal,
    })
  }
  let reader: BundleReader | undefined
  try {
    reader = await BundleReader.open(options.bundle, baseOf(options))
    const resolved = await resolveHelm({ explicit: options.helm, reader, stateDir, sink })
    sink.emit({
      type: 'log',
      level: 'info',
      code: 'I_HELM',
      message: `Using helm ${resolved.path} (${resolved.from === 'bundle' ? `${resolved.reused ? 'unpacked earlier ' : ''}from the bundle's ${resolved.member}` : resolved.from === 'flag' ? '--helm' : resolved.from})`,
      data: resolved,
    })
    const helm = resolved.path
    let pushed: PushResult | undefined
    let imageRegistry: string | undefined
    if (options.push) {
      const { target, plainHttp } = parsePushTarget(options.push.registry, options.push.prefix)
      const { http, registry } = await createRegistryClient({
        credentials: options.push.credentials,
        insecureRegistries: [
          ...(options.push.insecureRegistries ?? []),
          ...(plainHttp ? [target.registry] : []),
        ],
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
      // Nodes pull from the pushed copies from now on: recorded in the state folder for every later `serve`, and
      // served by this run's node setup at once.
      const pull = pullRegistryOf(target, plainHttp)
      const record = await writePullRegistry(stateDir, pull, {
        name: reader.metadata.name,
        version: reader.metadata.version,
      })
      serving?.pullFrom(pull)
      sink.emit(
        logEvent(
          'I_PULL_REGISTRY',
          `Node setup now points containerd at ${pull.url}${pull.prefix ? ` (${pull.prefix})` : ''} (recorded in ${record}); run node-setup.sh on the nodes again.`,
          { url: pull.url, ...(pull.prefix ? { prefix: pull.prefix } : {}), record },
        ),
      )
    }
    const server =
      serving?.caPem !== undefined
        ? { url: serving.url, caPem: serving.caPem }
        : await runningServer(options, stateDir)
    const served = server
      ? siteBuiltins({
          server: server.url,
          caPem: server.caPem,
          repositories: await nodePackageRepositories(reader),
        })
      : undefined
    // Relocated: the charts that name their images under ${{ site.airgap.registry }} pull the pushed copies too
    // (<registry>/<prefix>/docker.io/…, the same shape as the site server's <host:port>/docker.io/…).
    const builtins = served && imageRegistry ? { ...served, registry: imageRegistry } : served
    const install = await installStages({
      reader,
      kubeconfig: options.kubeconfig,
      context: options.context,
      siteValues: withSiteBuiltins(siteValues, builtins, options.valuesFile),
      helm,
      namespace: options.namespace,
      imageRegistry,
      skipPreflight: options.skipPreflight,
      reapply: options.reapply,
      sink,
      signal,
    })
    // Last step: the air-gap audit (every image the installed workloads use is in the bundle / served registry).
    const audit = options.noAudit
      ? undefined
      : await auditInstall({
          kubeconfig: options.kubeconfig,
          context: options.context,
          namespace: options.namespace,
          lock: reader.metadata,
          serving,
          // Images relocated by --relocate-images, and those the stages name under the site server itself
          // (\${{ site.airgap.registry }}/…, as the Astrago charts' registry values do) are site copies.
          siteRegistries: [
            ...(imageRegistry ? [imageRegistry] : []),
            ...(builtins ? [builtins.registry] : []),
          ],
          toolVersion: options.toolVersion,
          sink,
          signal,
        })
    const pullFrom = pullSource({
      ...(imageRegistry ? { imageRegistry } : {}),
      ...(serving ? { serving } : {}),
      keepServing: options.serve?.keep === true,
      ...(server ? { siteUrl: server.url } : {}),
    })
    if (pullFrom?.endsWithCommand)
      sink.emit(
        logEvent(
          'W_PULL_SERVER_ENDS',
          `The nodes pull the platform's images from ${pullFrom.where}, which this command serves and stops when it ends: a pod restarted or rescheduled later will fail to pull. Keep a server running (serve --install-service, or install --keep-serving), or push into an in-cluster registry (--push-to … --relocate-images).`,
          { where: pullFrom.where },
        ),
      )
    if (serving && options.serve?.keep) {
      const wait = new Task(
        sink,
        'install.serve',
        `Serving ${serving.url} for the cluster (Ctrl-C to stop)`,
        { data: { url: serving.url } },
      )
      await new Promise<void>((resolve) => {
        if (!signal || signal.aborted) return resolve()
        signal.addEventListener('abort', () => resolve(), { once: true })
      })
      wait.end('done')
    }
    const {
      stop: _stop,
      pullFrom: _pullFrom,
      ...servingInfo
    } = serving ?? {
      stop: undefined,
      pullFrom: undefined,
    }
    return {
      install,
      ...(serving ? { serving: servingInfo as Omit<ServingBundle, 'stop' | 'pullFrom'> } : {}),
      push: pushed,
      ...(audit ? { audit } : {}),
      ...(pullFrom ? { pullFrom } : {}),
    }
  } finally {
    await reader?.close()
    await serving?.stop()
  }
}

/**
 * The site server an install without `serve` relies on, for the stages' `site.airgap` values: its URL and the CA in
 * its state folder. Undefined when there is no CA there (then a stage that needs those values says so by name).
 */
async function runningServer(
  options: InstallBundleOptions,
  stateDir: string,
): Promise<{ url: string; caPem: string } | undefined> {
  let caPem: string
  try {
    caPem = await readFile(join(stateDir, 'ca', 'ca.crt'), 'utf8')
  } catch {
    return undefined
  }
  return { url: options.siteUrl ?? `https://${hostname()}:8443`, caPem }
}

const baseOf = (options: { base?: string }): { base?: string } => (options.base ? { base: options.base } : {})
