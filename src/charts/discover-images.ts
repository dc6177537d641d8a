import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { CORE_SCHEMA, loadAll, mergeTag } from 'js-yaml'
import { AirgapError } from '../errors.js'
import { helmHints } from '../helm/find-helm.js'
import { readChartMetadata } from './download.js'
import { isObject } from './repo-index.js'

/**
 * Finds the images a chart uses by rendering it with the real `helm template` and reading every container image of
 * every pod template in the output, at any depth (so Deployments, CronJobs and operators' custom resources alike),
 * plus the image references custom resources carry in `image` fields (and the `{repository, image, version}` triples
 * of NVIDIA's ClusterPolicy).
 */

export interface DiscoveredImage {
  ref: string
  /** Where it was found, e.g. "Deployment/web container app", "ClusterPolicy/cluster-policy spec.driver". */
  sources: string[]
}

export interface DiscoverImagesOptions {
  /** The helm binary (see findHelm). */
  helmBinary: string
  /** Values to render with (written to a temporary values file). */
  values?: Record<string, unknown>
  releaseName: string
  namespace: string
  /** `--kube-version`, for charts that check the cluster version. */
  kubeVersion?: string
  /** `--api-versions`, for charts that render resources only when an API (e.g. monitoring.coreos.com/v1) exists. */
  apiVersions?: string[]
  /** The chart's name for messages (default: from the archive, or the path). */
  chartName?: string
  signal?: AbortSignal
  /** helm template is killed after this long (default 5 minutes). */
  timeoutMs?: number
}

export interface DiscoverImagesResult {
  /** Sorted by reference; each reference once. */
  images: DiscoveredImage[]
  /**
   * Images an operator completes at run time, so no rendered object names them whole: the NVIDIA driver is
   * `<repository>/<image>:<version>-<node OS>` (ubuntu22.04, rhel9.4…). The bundle definition lists the real ones
   * under the chart's extraImages; `ref` here is the part before the suffix.
   */
  completedAtRunTime: DiscoveredImage[]
}

/** How much of helm's stderr is kept for the error message. */
const MAX_STDERR = 64 << 10

/**
 * Renders `chart` (a .tgz path, a chart folder, or the .tgz bytes) with `helm template` and collects its images.
 * helm failing is E_INPUT naming the chart and quoting helm's message.
 */
export async function discoverImages(
  chart: string | Buffer,
  options: DiscoverImagesOptions,
): Promise<DiscoverImagesResult> {
  const tmp = await mkdtemp(join(tmpdir(), 'astrago-chart-'))
  try {
    let chartPath: string
    let chartName = options.chartName
    if (typeof chart === 'string') {
      chartPath = chart
      chartName ??= basename(chart).replace(/\.tgz$/, '')
    } else {
      chartPath = join(tmp, 'chart.tgz')
      await writeFile(chartPath, chart)
      if (!chartName) {
        const meta = await readChartMetadata(chart).catch(() => undefined)
        chartName = meta ? `${meta.name} ${meta.version}` : 'chart'
      }
    }
    const valuesFile = join(tmp, 'values.yaml')
    // JSON is YAML: exact, and no YAML 1.1 surprises ("yes", "1.10") on helm's side.
    await writeFile(valuesFile, JSON.stringify(options.values ?? {}))
    const args = [
      'template',
      options.releaseName,
      chartPath,
      '--namespace',
      options.namespace,
      '--values',
      valuesFile,
      ...(options.kubeVersion ? ['--kube-version', options.kubeVersion] : []),
      ...(options.apiVersions ?? []).flatMap((v) => ['--api-versions', v]),
    ]
    const collector = new ImageCollector()
    await runHelmTemplate(options.helmBinary, args, tmp, chartName, options, collector)
    return { images: collector.result(), completedAtRunTime: collector.completedAtRunTime() }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

async function runHelmTemplate(
  helm: string,
  args: string[],
  tmp: string,
  chartName: string,
  options: DiscoverImagesOptions,
  collector: ImageCollector,
): Promise<void> {
  options.signal?.throwIfAborted()
  const child = spawn(helm, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own homes: nothing read from or written to the user's helm configuration.
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(tmp, 'cache'),
      HELM_CONFIG_HOME: join(tmp, 'config'),
      HELM_DATA_HOME: join(tmp, 'data'),
    },
  })
  const splitter = new DocumentSplitter((text, source) => collector.addDocuments(text, source))
  let parseError: unknown
  let stderr = ''
  let timedOut = false
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => {
    if (parseError) return
    try {
      splitter.push(chunk)
    } catch (error) {
      parseError = error
      child.kill('SIGTERM')
    }
  })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk
    if (stderr.length > MAX_STDERR) stderr = stderr.slice(-MAX_STDERR)
  })
  const onAbort = () => child.kill('SIGTERM')
  options.signal?.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, options.timeoutMs ?? 300_000)

  let exit: { code: number | null; signal: NodeJS.Signals | null }
  try {
    exit = await new Promise((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code, signal) => resolve({ code, signal }))
    })
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    throw new AirgapError('E_ENVIRONMENT', `Could not run helm (${helm}): ${e.message}`, {
      cause: error,
      hints: helmHints,
    })
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
  }

  if (options.signal?.aborted) throw options.signal.reason
  if (parseError) throw renderedYamlError(chartName, parseError)
  if (timedOut) {
    throw new AirgapError('E_INPUT', `helm template of chart ${chartName} did not finish in time.`, {
      data: { chart: chartName },
    })
  }
  if (exit.code !== 0) {
    const message = helmMessage(stderr) || `exit code ${exit.code ?? exit.signal}`
    throw new AirgapError('E_INPUT', `helm template failed for chart ${chartName}: ${message}`, {
      data: { chart: chartName, exitCode: exit.code, stderr: stderr.trim() },
      hints: [
        "Check the chart's values in the bundle definition (helm's message says which template failed).",
      ],
    })
  }
  try {
    splitter.end()
  } catch (error) {
    throw renderedYamlError(chartName, error)
  }
}

function renderedYamlError(chartName: string, error: unknown): AirgapError {
  return new AirgapError(
    'E_INPUT',
    `helm template of chart ${chartName} rendered YAML that cannot be read: ${(error as Error).message}`,
    { cause: error, data: { chart: chartName } },
  )
}

/** helm's error lines (it prints "Error: …" last), without its informational noise. */
function helmMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  const from = lines.findIndex((l) => l.startsWith('Error:'))
  return (from >= 0 ? lines.slice(from) : lines.slice(-5)).join(' ').slice(0, 4000)
}

/**
 * Splits a multi-document YAML stream into documents as it arrives (at "---" lines), so only one document is held
 * at a time. Remembers helm's "# Source: <template>" comment of each document for messages.
 */
class DocumentSplitter {
  private partial = ''
  private lines: string[] = []
  private source: string | undefined

  constructor(private readonly onDocument: (text: string, source: string | undefined) => void) {}

  push(chunk: string): void {
    const text = this.partial + chunk
    const parts = text.split('\n')
    this.partial = parts.pop() ?? ''
    for (const line of parts) this.line(line)
  }

  end(): void {
    if (this.partial) this.line(this.partial)
    this.partial = ''
    this.flush()
  }

  private line(line: string): void {
    if (/^---(?:[ \t]|$)/.test(line)) {
      this.flush()
      this.lines = [line]
      return
    }
    const source = /^# Source: (.+)$/.exec(line)
    if (source && this.source === undefined) this.source = source[1]?.trim()
    this.lines.push(line)
  }

  private flush(): void {
    const text = this.lines.join('\n')
    const source = this.source
    this.lines = []
    this.source = undefined
    if (text.trim()) this.onDocument(text, source)
  }
}

const CONTAINER_FIELDS = [
  ['containers', 'container'],
  ['initContainers', 'initContainer'],
  ['ephemeralContainers', 'ephemeralContainer'],
] as const

const schema = CORE_SCHEMA.withTags(mergeTag)

/** ClusterPolicy components that run only for sandbox (VM) workloads. */
const SANDBOX_COMPONENTS = new Set([
  'vfioManager',
  'vgpuManager',
  'vgpuDeviceManager',
  'sandboxDevicePlugin',
  'kataManager',
  'ccManager',
])

/** Collects image references from Kubernetes objects. Exported for tests of the walking rules. */
export class ImageCollector {
  private readonly found = new Map<string, Set<string>>()
  private readonly completed = new Map<string, Set<string>>()

  /** Parses YAML text (one or more documents) and collects from each object in it. */
  addDocuments(text: string, source?: string): void {
    let docs: unknown[]
    try {
      docs = loadAll(text, { schema, json: true, filename: source })
    } catch (error) {
      throw new Error(`${source ?? 'a rendered document'}: ${(error as Error).message}`, { cause: error })
    }
    for (const doc of docs) this.addObject(doc)
  }

  /** Collects from one Kubernetes object (a `kind: …List` contributes each of its items). */
  addObject(doc: unknown): void {
    if (!isObject(doc)) return
    if (typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) {
      for (const item of doc.items) this.addObject(item)
      return
    }
    const kind = typeof doc.kind === 'string' && doc.kind ? doc.kind : 'Object'
    const meta = isObject(doc.metadata) ? doc.metadata : {}
    const name =
      typeof meta.name === 'string' && meta.name
        ? meta.name
        : typeof meta.generateName === 'string' && meta.generateName
          ? meta.generateName
          : '(unnamed)'
    const custom = isCustomResource(doc.apiVersion)
    const containers = new WeakSet<object>()
    const object =
      kind === 'ClusterPolicy' &&
      typeof doc.apiVersion === 'string' &&
      doc.apiVersion.startsWith('nvidia.com/')
        ? this.clusterPolicy(doc, `${kind}/${name}`)
        : doc
    this.walk(object, '', { owner: `${kind}/${name}`, custom, containers }, 0)
  }

  /**
   * What of an NVIDIA ClusterPolicy actually runs: a component with `enabled: false` starts nothing; the sandbox
   * components (VFIO, vGPU, KubeVirt device plugin, Kata, confidential computing) only run with
   * `sandboxWorkloads.enabled`; and the driver's image is completed with the node OS (and, precompiled, the kernel)
   * at run time (see completedAtRunTime), so its triple is not an image by itself.
   */
  private clusterPolicy(doc: Record<string, unknown>, owner: string): Record<string, unknown> {
    if (!isObject(doc.spec)) return doc
    const spec: Record<string, unknown> = { ...doc.spec }
    const sandbox = isObject(spec.sandboxWorkloads) && spec.sandboxWorkloads.enabled === true
    for (const [key, value] of Object.entries(spec)) {
      if (!isObject(value)) continue
      const sandboxOnly = SANDBOX_COMPONENTS.has(key) && !sandbox
      if (value.enabled === false || sandboxOnly) delete spec[key]
    }
    if (isObject(spec.driver)) {
      const driver = spec.driver
      const base = tripleRef(driver)
      if (base) {
        const sources = this.completed.get(base) ?? new Set<string>()
        sources.add(`${owner} spec.driver`)
        this.completed.set(base, sources)
        spec.driver = { ...driver, repository: undefined, image: undefined, version: undefined }
      }
    }
    return { ...doc, spec }
  }

  /** The images operators complete at run time, found so far (see DiscoverImagesResult). */
  completedAtRunTime(): DiscoveredImage[] {
    return [...this.completed.entries()]
      .sort(([a], [b]) => compare(a, b))
      .map(([ref, sources]) => ({ ref, sources: [...sources].sort(compare) }))
  }

  private walk(
    node: unknown,
    path: string,
    ctx: { owner: string; custom: boolean; containers: WeakSet<object> },
    depth: number,
  ): void {
    if (depth > 200) return
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        this.walk(item, `${path}[${i}]`, ctx, depth + 1)
      })
      return
    }
    if (!isObject(node)) return

    for (const [field, label] of CONTAINER_FIELDS) {
      const list = node[field]
      if (!Array.isArray(list)) continue
      list.forEach((c, i) => {
        if (!isObject(c) || typeof c.image !== 'string' || !c.image.trim()) return
        ctx.containers.add(c)
        const cname = typeof c.name === 'string' && c.name ? c.name : `#${i}`
        this.add(c.image, `${ctx.owner} ${label} ${cname}`)
        this.addPassedImages(c, `${ctx.owner} ${label} ${cname}`)
      })
    }
    // Image volumes (Kubernetes 1.31+): volumes[].image.reference.
    if (Array.isArray(node.volumes)) {
      for (const v of node.volumes) {
        if (
          isObject(v) &&
          isObject(v.image) &&
          typeof v.image.reference === 'string' &&
          v.image.reference.trim()
        ) {
          this.add(v.image.reference, `${ctx.owner} volume ${typeof v.name === 'string' ? v.name : '?'}`)
        }
      }
    }
    if (ctx.custom && !ctx.containers.has(node)) {
      const triple = tripleRef(node)
      const where = `${ctx.owner} ${path.replace(/^\./, '') || '(root)'}`
      if (triple) this.add(triple, where)
      else if (typeof node.image === 'string' && looksLikeImageRef(node.image.trim()))
        this.add(node.image, where)
    }
    for (const [key, value] of Object.entries(node)) {
      if (typeof value === 'object' && value !== null) this.walk(value, `${path}.${key}`, ctx, depth + 1)
    }
  }

  /**
   * Images an operator is told to run through its own container's arguments or environment, which no pod spec shows
   * until it runs: `--prometheus-config-reloader=quay.io/…:v0.70.0`, `RELATED_IMAGE_FOO=registry/…@sha256:…`. Only
   * fully qualified references (a registry host and a tag or digest) count, so ordinary flags and URLs do not.
   */
  private addPassedImages(container: Record<string, unknown>, where: string): void {
    const strings = (list: unknown) =>
      Array.isArray(list) ? list.filter((v): v is string => typeof v === 'string') : []
    for (const arg of [...strings(container.args), ...strings(container.command)]) {
      const flag = /^--?([A-Za-z0-9][\w.-]*)=(\S+)$/.exec(arg.trim())
      if (flag && isQualifiedImageRef(flag[2]!)) this.add(flag[2]!, `${where} arg --${flag[1]}`)
    }
    if (Array.isArray(container.env)) {
      for (const env of container.env) {
        if (!isObject(env) || typeof env.name !== 'string' || typeof env.value !== 'string') continue
        if (/IMAGE/i.test(env.name) && isQualifiedImageRef(env.value.trim()))
          this.add(env.value.trim(), `${where} env ${env.name}`)
      }
    }
  }

  private add(ref: string, source: string): void {
    const key = ref.trim()
    let sources = this.found.get(key)
    if (!sources) {
      sources = new Set()
      this.found.set(key, sources)
    }
    sources.add(source)
  }

  result(): DiscoveredImage[] {
    return [...this.found.entries()]
      .sort(([a], [b]) => compare(a, b))
      .map(([ref, sources]) => ({ ref, sources: [...sources].sort(compare) }))
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Whether an apiVersion is a custom resource's: a group with a dot that is not one of Kubernetes' own (*.k8s.io).
 * Core (v1) and the dotless built-in groups (apps, batch, policy, autoscaling) are not.
 */
export function isCustomResource(apiVersion: unknown): boolean {
  if (typeof apiVersion !== 'string' || !apiVersion.includes('/')) return false
  const group = apiVersion.slice(0, apiVersion.lastIndexOf('/'))
  return group.includes('.') && group !== 'k8s.io' && !group.endsWith('.k8s.io')
}

/** NVIDIA-style `{repository, image, version}` → `repository/image:version` (or `@sha256:…` for a digest). */
function tripleRef(node: Record<string, unknown>): string | undefined {
  const repository = typeof node.repository === 'string' ? node.repository.trim().replace(/\/+$/, '') : ''
  const image = typeof node.image === 'string' ? node.image.trim() : ''
  const version =
    typeof node.version === 'string'
      ? node.version.trim()
      : typeof node.version === 'number'
        ? String(node.version)
        : ''
  if (!repository || !image || !version) return undefined
  const ref = `${repository}/${image}${version.startsWith('sha256:') ? '@' : ':'}${version}`
  return looksLikeImageRef(ref) ? ref : undefined
}

const REFERENCE =
  /^(?:(?<host>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d+)?)\/)?(?<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::(?<tag>[\w][\w.-]{0,127}))?(?:@(?<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$/

/**
 * Whether a string is a full image reference, as opposed to a bare name: valid reference syntax with a tag, a digest,
 * or a registry host (a first segment with a dot or a port, or localhost).
 */
/** A reference with a registry host (a dot, a port or localhost) and a tag or digest: `quay.io/x/y:1.0`. */
export function isQualifiedImageRef(value: string): boolean {
  const m = REFERENCE.exec(value)
  if (!m?.groups) return false
  const { host, tag, digest } = m.groups
  const registry = host !== undefined && (host.includes('.') || host.includes(':') || host === 'localhost')
  return registry && Boolean(tag || digest) && !value.includes('://')
}

export function looksLikeImageRef(value: string): boolean {
  const m = REFERENCE.exec(value)
  if (!m?.groups) return false
  const { host, tag, digest } = m.groups
  const registry = host !== undefined && (host.includes('.') || host.includes(':') || host === 'localhost')
  return Boolean(tag || digest || registry)
}
