import { execFile } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import * as yaml from 'js-yaml'
import { findTool } from './tools.js'

const run = promisify(execFile)

export interface ChartOptions {
  name: string
  version: string
  appVersion?: string
  /** One container per image, named after the image's last path segment (deduplicated with -2, -3...). */
  images: string[]
  kind?: 'Deployment' | 'Job'
  /** Deployment replicas, or Job completions (default 1). */
  replicas?: number
  /** Extra values, deep-merged over the generated values.yaml. */
  values?: object
}

/** An image reference split the way charts take it in values: override `registry` to relocate the image. */
export interface ImageValues {
  registry: string
  repository: string
  tag: string
  digest: string
}

/**
 * Writes a real Helm chart into `dir/<name>` (replacing it): Chart.yaml v2, values.yaml, templates for a Deployment
 * or a Job with one container per image. Packages it with the real `helm package` into `dir/<name>-<version>.tgz`
 * and returns that path.
 *
 * Images are values, as in real charts: `images.<container>.{registry,repository,tag,digest}`, with
 * `global.imageRegistry` overriding every registry at once. With nothing overridden a container's image renders
 * exactly as given. The chart files are deterministic (same options, same bytes); helm stamps the archive entries
 * with the packaging time, so only the .tgz's timestamps vary.
 */
export async function createChart(dir: string, options: ChartOptions): Promise<string> {
  const kind = options.kind ?? 'Deployment'
  if (options.images.length === 0) throw new Error(`chart ${options.name}: at least one image is needed`)
  const chartDir = join(dir, options.name)
  await rm(chartDir, { recursive: true, force: true })
  await mkdir(join(chartDir, 'templates'), { recursive: true })

  const chart = {
    apiVersion: 'v2',
    name: options.name,
    description: `Test chart ${options.name}: a ${kind} of ${options.images.length} container(s)`,
    type: 'application',
    version: options.version,
    ...(options.appVersion !== undefined ? { appVersion: options.appVersion } : {}),
  }
  const images: Record<string, ImageValues> = {}
  for (const image of options.images) images[uniqueName(containerName(image), images)] = splitImage(image)
  const generated = {
    global: { imageRegistry: '' },
    ...(kind === 'Deployment'
      ? { replicaCount: options.replicas ?? 1 }
      : { completions: options.replicas ?? 1 }),
    images,
    imagePullPolicy: 'IfNotPresent',
    imagePullSecrets: [],
    podAnnotations: {},
    resources: {},
    nodeSelector: {},
    tolerations: [],
  }
  const values = deepMerge(generated, (options.values ?? {}) as Record<string, unknown>)

  await writeFile(join(chartDir, 'Chart.yaml'), dumpYaml(chart))
  await writeFile(join(chartDir, 'values.yaml'), dumpYaml(values))
  await writeFile(join(chartDir, '.helmignore'), '.git/\n*.tgz\n')
  await writeFile(join(chartDir, 'templates', '_helpers.tpl'), helpersTemplate(options.name))
  await writeFile(
    join(chartDir, 'templates', kind === 'Deployment' ? 'deployment.yaml' : 'job.yaml'),
    kind === 'Deployment' ? deploymentTemplate(options.name) : jobTemplate(options.name),
  )

  const { stdout } = await helm(['package', chartDir, '--destination', dir], { home: join(dir, '.helm') })
  const packaged = /saved it to: (.+\.tgz)\s*$/m.exec(stdout)?.[1]
  const expected = join(dir, `${options.name}-${options.version}.tgz`)
  if (packaged !== expected)
    throw new Error(`helm package wrote ${packaged ?? 'nothing'}, expected ${expected}\n${stdout}`)
  return expected
}

/**
 * Runs the real helm. Its cache, configuration and data live under `home` (never the user's ~/.cache/helm...), and
 * a failure throws with helm's own output.
 */
export async function helm(
  args: string[],
  options: { home: string; timeoutMs?: number },
): Promise<{ stdout: string; stderr: string }> {
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(options.home, 'cache'),
    HELM_CONFIG_HOME: join(options.home, 'config'),
    HELM_DATA_HOME: join(options.home, 'data'),
  }
  try {
    return await run(findTool('helm'), args, {
      env,
      timeout: options.timeoutMs ?? 180_000,
      maxBuffer: 16 << 20,
    })
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string }
    throw new Error(`helm ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
      cause: error,
    })
  }
}

/** Splits `[registry/]repository[:tag][@digest]`; the registry is the first segment if it looks like a host. */
export function splitImage(image: string): ImageValues {
  let rest = image
  let digest = ''
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
  }
  let tag = ''
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
  }
  let registry = ''
  const slash = rest.indexOf('/')
  if (slash >= 0) {
    const first = rest.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first
      rest = rest.slice(slash + 1)
    }
  }
  if (!rest) throw new Error(`not an image reference: ${image}`)
  return { registry, repository: rest, tag, digest }
}

function containerName(image: string): string {
  const last = splitImage(image).repository.split('/').pop() ?? 'app'
  const name = last
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50)
  return name || 'app'
}

function uniqueName(base: string, taken: Record<string, unknown>): string {
  if (!(base in taken)) return base
  for (let i = 2; ; i++) if (!(`${base}-${i}` in taken)) return `${base}-${i}`
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(over)) {
    const current = out[key]
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value
  }
  return out
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function dumpYaml(value: unknown): string {
  return yaml.dump(value, { lineWidth: -1, noRefs: true })
}

// Templates. The image of a container is rendered from its values; containers come in name order (helm ranges
// over a map sorted by key), so the output does not depend on anything but the values.

function helpersTemplate(chart: string): string {
  return `{{- define "${chart}.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "${chart}.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "${chart}.labels" -}}
{{ include "${chart}.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "${chart}.image" -}}
{{- $registry := .root.Values.global.imageRegistry | default .image.registry -}}
{{- if $registry }}{{ $registry }}/{{ end }}{{ .image.repository }}
{{- if .image.tag }}:{{ .image.tag }}{{ end }}
{{- if .image.digest }}@{{ .image.digest }}{{ end }}
{{- end -}}

{{- define "${chart}.podSpec" -}}
containers:
{{- range $name, $image := .Values.images }}
  - name: {{ $name }}
    image: {{ include "${chart}.image" (dict "root" $ "image" $image) | quote }}
    imagePullPolicy: {{ $.Values.imagePullPolicy }}
    {{- with $.Values.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
`
}

function deploymentTemplate(chart: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "${chart}.fullname" . }}
  labels:
    {{- include "${chart}.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "${chart}.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "${chart}.selectorLabels" . | nindent 8 }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "${chart}.podSpec" . | nindent 6 }}
`
}

function jobTemplate(chart: string): string {
  return `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "${chart}.fullname" . }}
  labels:
    {{- include "${chart}.labels" . | nindent 4 }}
spec:
  completions: {{ .Values.completions }}
  parallelism: {{ .Values.completions }}
  backoffLimit: 0
  template:
    metadata:
      labels:
        {{- include "${chart}.selectorLabels" . | nindent 8 }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      restartPolicy: Never
      {{- include "${chart}.podSpec" . | nindent 6 }}
`
}
