import type { BundleMetadata } from '../bundle/metadata.js'
import { BundleReader } from '../bundle/reader.js'
import { Semaphore } from '../concurrency/semaphore.js'
import { AirgapError } from '../errors.js'
import { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { createRegistryClient } from '../oci/create-registry-client.js'
import type { Credential } from '../oci/docker-config.js'
import { MANIFEST_ACCEPT } from '../oci/media-types.js'
import {
  formatImageReference,
  type ImageReference,
  parseImageReference,
  repositoryName,
} from '../oci/reference.js'
import type { RegistryClient } from '../oci/registry-client.js'
import { type PushTarget, parsePushTarget, siteRepository } from '../push/target.js'
import { podSpecsOf } from '../stages/images.js'
import { clusterError, KubeClient } from '../stages/kube-client.js'
import type { KubeObject } from '../stages/objects.js'

/**
 * The air-gap audit: every image the cluster's workloads name, checked against the site registry. An image that the
 * site registry does not hold is one a node would try to pull from the internet (and, offline, fail to): today's
 * node-feature-discovery image from registry.k8s.io is the classic case. Workloads are Pods (containers,
 * initContainers, ephemeralContainers) and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets,
 * Jobs and CronJobs. A pod or ReplicaSet whose controller uses the same image is reported under that controller, so
 * a Deployment's image names the Deployment, not each of its pods. The ReplicaSets a Deployment keeps from earlier
 * rollouts, scaled to zero, run nothing and are left out (after an upgrade they name the previous version's images).
 *
 * References are normalized as Docker does (`nginx` is `docker.io/library/nginx:latest`). A reference already under
 * the site registry (`<site>/docker.io/library/nginx:1.27`, as `--relocate-images` writes them) is checked by the
 * full upstream name after the site prefix. An image is checked by asking the running site registry (a HEAD on its
 * manifest with the OCI/Docker Accept header) or against a bundle's lock (name and tag, or name and digest, in
 * bundle.json). Given both, the running registry decides (it is what nodes pull from; it may also hold images pushed
 * after the bundle) and the report says where each image was found.
 */
export interface AuditImagesOptions {
  kubeconfig: string
  context?: string
  /** Namespaces to look in; undefined: all of them. */
  namespaces?: string[]
  /** The running site registry: https://host:port, optionally with a repository prefix (https://harbor/astrago). */
  registry?: {
    url: string
    caFiles?: string[]
    credentials?: Record<string, Credential>
  }
  /** A bundle file whose lock is the list of what the site registry holds. */
  bundle?: string
  /** The lock of an opened bundle (instead of `bundle`). */
  lock?: BundleMetadata
  /** Registry prefixes (host[:port][/path]) under which references are already site copies. */
  siteRegistries?: string[]
  concurrency?: number
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
}

export type AuditStatus = 'ok' | 'missing' | 'invalid'

export interface WorkloadUse {
  kind: string
  namespace: string
  name: string
  containers: string[]
}

export interface AuditedImage {
  /** The normalized upstream reference (docker.io/library/nginx:1.27). */
  image: string
  /** The references as the workloads wrote them. */
  references: string[]
  /** The registry host the image comes from upstream: where a node would pull it without the site registry. */
  upstream: string
  status: AuditStatus
  /** Where it was found: the bundle's lock, the running registry. */
  foundIn: ('bundle' | 'registry')[]
  /** Why it is invalid, or what the registry answered when it was not a plain 404. */
  reason?: string
  workloads: WorkloadUse[]
}

export interface AuditResult {
  /** What the images were checked against. */
  against: { registry?: string; bundle?: { name: string; version: string; path?: string } }
  /** The namespaces looked in; "all" for the whole cluster. */
  namespaces: string[] | 'all'
  /** Workload objects read. */
  workloads: number
  images: AuditedImage[]
  ok: number
  missing: number
  invalid: number
  durationMs: number
}

const WORKLOAD_KINDS: [apiVersion: string, kind: string][] = [
  ['v1', 'Pod'],
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'StatefulSet'],
  ['apps/v1', 'DaemonSet'],
  ['apps/v1', 'ReplicaSet'],
  ['batch/v1', 'Job'],
  ['batch/v1', 'CronJob'],
]
const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const

export async function auditImages(options: AuditImagesOptions): Promise<AuditResult> {
  const started = Date.now()
  const { sink, signal } = options
  if (!options.registry && !options.bundle && !options.lock) {
    throw new AirgapError('E_USAGE', 'Nothing to check the images against.', {
      hints: ['Give the running site registry with --registry https://host:port, or a bundle with --bundle.'],
    })
  }
  const task = new Task(sink, 'audit', 'Audit the images of the cluster’s workloads')
  try {
    let lock = options.lock
    if (!lock && options.bundle) {
      // The inventory is all it needs: a delta bundle's is complete without its base.
      const reader = await BundleReader.open(options.bundle, { alone: true })
      lock = reader.metadata
      await reader.close()
    }
    const target = options.registry ? parseRegistryUrl(options.registry.url) : undefined
    const siteRegistries = [
      ...(options.siteRegistries ?? []),
      ...(target ? [target.prefix ? `${target.registry}/${target.prefix}` : target.registry] : []),
    ]

    const listing = task.child('audit.list', 'List the workloads')
    const objects = await listing.run(
      () => listWorkloads(options, signal),
      (list) => `${list.length} objects`,
    )
    const used = collectImages(objects, siteRegistries)

    const inLock = lock ? lockIndex(lock) : undefined
    const checking = task.child('audit.check', `Check ${used.size} images`, {
      total: used.size,
      unit: 'items',
      data: { images: used.size },
    })
    let registry: { client: RegistryClient; close: () => Promise<void> } | undefined
    if (target && options.registry) {
      const { http, registry: client } = await createRegistryClient({
        caFiles: options.registry.caFiles,
        credentials: options.registry.credentials,
        insecureRegistries: target.plainHttp ? [target.registry] : [],
        concurrency: options.concurrency,
        toolVersion: options.toolVersion,
        sink,
      })
      registry = { client, close: () => http.close() }
    }
    const images: AuditedImage[] = []
    try {
      const limit = new Semaphore(options.concurrency ?? 8)
      let done = 0
      await Promise.all(
        [...used.values()].map((entry) =>
          limit.run(async () => {
            images.push(await checkImage(entry, inLock, registry?.client, target, signal))
            done += 1
            checking.progress(done, used.size, 'items')
          }),
        ),
      )
      checking.end('done')
    } catch (error) {
      checking.end('failed', error instanceof Error ? error.message : String(error))
      throw error
    } finally {
      await registry?.close()
    }
    images.sort((a, b) => order(a.status) - order(b.status) || a.image.localeCompare(b.image))
    const count = (status: AuditStatus) => images.filter((i) => i.status === status).length
    const result: AuditResult = {
      against: {
        ...(options.registry ? { registry: options.registry.url } : {}),
        ...(lock
          ? {
              bundle: {
                name: lock.name,
                version: lock.version,
                ...(options.bundle ? { path: options.bundle } : {}),
              },
            }
          : {}),
      },
      namespaces: options.namespaces ?? 'all',
      workloads: objects.length,
      images,
      ok: count('ok'),
      missing: count('missing'),
      invalid: count('invalid'),
      durationMs: Date.now() - started,
    }
    for (const image of images) {
      if (image.status === 'ok') continue
      sink.emit({
        type: 'log',
        level: 'warn',
        code: image.status === 'missing' ? 'W_IMAGE_MISSING' : 'W_IMAGE_INVALID',
        message: `${image.status === 'missing' ? 'MISSING' : 'INVALID'} ${image.image}${image.reason ? ` (${image.reason})` : ''}, used by ${describeWorkloads(image.workloads)}`,
        data: { image: image.image },
      })
    }
    task.end(
      result.missing + result.invalid ? 'failed' : 'done',
      `${result.ok} OK, ${result.missing} missing${result.invalid ? `, ${result.invalid} invalid` : ''}`,
    )
    return result
  } catch (error) {
    task.end('failed', error instanceof Error ? error.message : String(error))
    throw error
  }
}

/**
 * The E_CLUSTER error for an audit that found images the site registry does not hold, or undefined when it is clean.
 * The full report is its data (`--json`).
 */
export function auditFailure(result: AuditResult, context = ''): AirgapError | undefined {
  const bad = result.images.filter((i) => i.status !== 'ok')
  if (!bad.length) return undefined
  const lines = bad.map(
    (i) =>
      `  ${i.status === 'missing' ? 'MISSING' : 'INVALID'} ${i.image}${i.status === 'missing' ? ` (would be pulled from ${i.upstream})` : ` (${i.reason})`}: ${describeWorkloads(i.workloads)}`,
  )
  return new AirgapError(
    'E_CLUSTER',
    `${context}${bad.length} image${bad.length === 1 ? '' : 's'} used in the cluster ${bad.length === 1 ? 'is' : 'are'} not in the site registry (a node would pull a MISSING one from the internet):\n${lines.join('\n')}`,
    {
      data: { audit: result },
      hints: [
        'Add the missing images to the bundle definition (images:) and build the bundle again, or push them into the site registry.',
        'A chart that renders an image the bundle did not discover needs that value set in the definition’s chart values.',
      ],
    },
  )
}

/** "Deployment gpu/nfd (container nfd), Pod default/x". */
export function describeWorkloads(workloads: WorkloadUse[]): string {
  return workloads
    .map(
      (w) =>
        `${w.kind} ${w.namespace}/${w.name} (container${w.containers.length === 1 ? '' : 's'} ${w.containers.join(', ')})`,
    )
    .join(', ')
}

/** https://host:port[/prefix] → the registry host, its repository prefix, and whether it speaks plain HTTP. */
function parseRegistryUrl(url: string): PushTarget & { plainHttp: boolean } {
  if (!/^https?:\/\//i.test(url.trim())) {
    throw new AirgapError(
      'E_USAGE',
      `--registry ${url}: give the site registry as a URL, https://host:port.`,
      {
        hints: ['e.g. --registry https://10.0.0.5:8443 --ca-file astrago-airgap-site/ca/ca.crt'],
      },
    )
  }
  const { target, plainHttp } = parsePushTarget(url)
  return { ...target, plainHttp }
}

async function listWorkloads(options: AuditImagesOptions, signal?: AbortSignal): Promise<KubeObject[]> {
  const client = KubeClient.load({ kubeconfig: options.kubeconfig, context: options.context })
  const scopes = options.namespaces ?? [undefined]
  const lists = await Promise.all(
    WORKLOAD_KINDS.flatMap(([apiVersion, kind]) =>
      scopes.map(async (namespace) => {
        try {
          return await client.list(apiVersion, kind, { namespace }, signal)
        } catch (error) {
          throw clusterError(error, `listing ${kind}s${namespace ? ` in ${namespace}` : ''}`, client.server)
        }
      }),
    ),
  )
  return lists.flat()
}

interface ImageUse {
  /** Normalized upstream reference, or the text as written when it does not parse. */
  key: string
  ref?: ImageReference
  invalid?: string
  references: Set<string>
  /** kind/namespace/name → use */
  workloads: Map<string, WorkloadUse>
}

interface Node {
  object: KubeObject
  /** image as written → container names */
  images: Map<string, string[]>
  owner?: string
}

/**
 * A ReplicaSet its Deployment keeps from an earlier rollout, scaled to zero: it runs no pod and names the image the
 * Deployment used before (an upgrade's previous version), so it is not a use of that image.
 */
function isRolloutHistory(object: KubeObject): boolean {
  if (object.kind !== 'ReplicaSet') return false
  const owners = (object.metadata.ownerReferences ?? []) as { kind?: string; controller?: boolean }[]
  const spec = (object as unknown as { spec?: { replicas?: unknown } }).spec
  return spec?.replicas === 0 && owners.some((o) => o.controller && o.kind === 'Deployment')
}

/** Every image as used by its top-most workload, grouped by normalized reference. */
export function collectImages(objects: KubeObject[], siteRegistries: string[] = []): Map<string, ImageUse> {
  const byUid = new Map<string, Node>()
  const nodes: Node[] = []
  for (const object of objects) {
    if (isRolloutHistory(object)) continue
    const images = new Map<string, string[]>()
    for (const spec of podSpecsOf(object as unknown as Record<string, unknown>)) {
      for (const list of CONTAINER_LISTS) {
        const containers = spec[list]
        if (!Array.isArray(containers)) continue
        for (const c of containers as { name?: unknown; image?: unknown }[]) {
          if (typeof c?.image !== 'string' || !c.image) continue
          const names = images.get(c.image) ?? []
          names.push(typeof c.name === 'string' ? c.name : '?')
          images.set(c.image, names)
        }
      }
    }
    const owners = (object.metadata.ownerReferences ?? []) as { uid?: string; controller?: boolean }[]
    const node: Node = { object, images, owner: owners.find((o) => o.controller)?.uid }
    nodes.push(node)
    const uid = object.metadata.uid
    if (typeof uid === 'string') byUid.set(uid, node)
  }

  const used = new Map<string, ImageUse>()
  for (const node of nodes) {
    for (const [written, containers] of node.images) {
      // Attributed to the top-most controller that uses the same image.
      let user = node
      for (let depth = 0; depth < 5; depth++) {
        const owner = user.owner ? byUid.get(user.owner) : undefined
        if (!owner?.images.has(written)) break
        user = owner
      }
      if (user !== node) continue // counted when the controller itself is visited
      const { key, ref, invalid } = normalizeImage(written, siteRegistries)
      let entry = used.get(key)
      if (!entry) {
        entry = { key, ref, invalid, references: new Set(), workloads: new Map() }
        used.set(key, entry)
      }
      entry.references.add(written)
      const m = node.object.metadata
      const id = `${node.object.kind}/${m.namespace ?? ''}/${m.name}`
      const use = entry.workloads.get(id) ?? {
        kind: node.object.kind,
        namespace: m.namespace ?? '',
        name: m.name,
        containers: [],
      }
      for (const c of containers) if (!use.containers.includes(c)) use.containers.push(c)
      entry.workloads.set(id, use)
    }
  }
  return used
}

/**
 * The upstream reference an image stands for. A reference under one of the site registries is a site copy: what
 * follows the prefix is the full upstream name (a port in that name was written `_port`, see siteRepository).
 */
export function normalizeImage(
  written: string,
  siteRegistries: string[] = [],
): { key: string; ref?: ImageReference; invalid?: string } {
  let text = written.trim()
  for (const site of siteRegistries) {
    const prefix = `${site.replace(/\/+$/, '')}/`
    if (text.startsWith(prefix)) {
      text = text.slice(prefix.length).replace(/^([^/]+\.[^/]+)_(\d+)\//, '$1:$2/')
      break
    }
  }
  try {
    const ref = parseImageReference(text)
    return { key: formatImageReference(ref), ref }
  } catch (error) {
    return { key: written, invalid: error instanceof Error ? error.message : String(error) }
  }
}

interface LockEntry {
  tags: Set<string>
  digests: Set<string>
}

function lockIndex(lock: BundleMetadata): Map<string, LockEntry> {
  const index = new Map<string, LockEntry>()
  for (const image of lock.images) {
    const entry = index.get(image.name) ?? { tags: new Set(), digests: new Set() }
    if (image.tag) entry.tags.add(image.tag)
    // Not upstreamDigest: when platforms were filtered out, the bundle does not hold upstream's index.
    entry.digests.add(image.digest)
    for (const m of image.manifests) entry.digests.add(m.digest)
    index.set(image.name, entry)
  }
  return index
}

async function checkImage(
  use: ImageUse,
  lock: Map<string, LockEntry> | undefined,
  registry: RegistryClient | undefined,
  target: PushTarget | undefined,
  signal?: AbortSignal,
): Promise<AuditedImage> {
  const base = {
    image: use.key,
    references: [...use.references].sort(),
    workloads: [...use.workloads.values()].sort((a, b) =>
      `${a.namespace}/${a.kind}/${a.name}`.localeCompare(`${b.namespace}/${b.kind}/${b.name}`),
    ),
  }
  if (!use.ref) {
    return { ...base, upstream: '', status: 'invalid', foundIn: [], reason: use.invalid }
  }
  const ref = use.ref
  const name = repositoryName(ref)
  const foundIn: AuditedImage['foundIn'] = []
  let reason: string | undefined
  if (lock) {
    const entry = lock.get(name)
    if (entry && (ref.digest ? entry.digests.has(ref.digest) : entry.tags.has(ref.tag ?? 'latest')))
      foundIn.push('bundle')
  }
  if (registry && target) {
    const repo = { registry: target.registry, repository: siteRepository(target, name) }
    const reference = ref.digest ?? ref.tag ?? 'latest'
    const res = await registry.request(repo, `manifests/${reference}`, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT },
      signal,
    })
    await res.body.dump()
    if (res.status === 200) foundIn.push('registry')
    else if (res.status !== 404) reason = `the registry answered HTTP ${res.status}`
  }
  // The running registry is what nodes pull from: when it was asked, its answer decides.
  const found = foundIn.includes(registry ? 'registry' : 'bundle')
  return {
    ...base,
    upstream: ref.registry,
    status: found ? 'ok' : 'missing',
    foundIn,
    ...(reason && !found ? { reason } : {}),
  }
}

function order(status: AuditStatus): number {
  return status === 'ok' ? 2 : status === 'missing' ? 0 : 1
}
