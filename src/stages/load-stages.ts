import { CORE_SCHEMA, loadAll, mergeTag } from 'js-yaml'
import { chartPath } from '../bundle/layout.js'
import type { BundleMetadata, LockedChart } from '../bundle/metadata.js'
import { AirgapError } from '../errors.js'
import { closestMatch } from '../spec/closest-match.js'
import { JsonPathError, parseJsonPath } from './jsonpath.js'
import { isPlainObject } from './objects.js'
import { checkValuesSchema, type ValuesSchema } from './site-values.js'

/**
 * Loads the install stages of a bundle: every member under manifests/<stage>/ (the stage folder of the bundle
 * definition). A stage is its plain Kubernetes manifests (*.yaml, *.yml, several documents per file), and optionally
 * a stage.yaml with Helm charts to install from the bundle, extra readiness rules, a timeout and the schema of the
 * site values it needs. The format is documented in docs/stages.md. Everything is checked here, before anything
 * touches a cluster; every problem names the bundle member and the field.
 */
export const STAGE_API_VERSION = 'airgap.astrago.io/v1alpha1'
export const STAGE_FILE = 'stage.yaml'
export const DEFAULT_STAGE_TIMEOUT_MS = 10 * 60_000
/** Members larger than this are not parsed (a stage is text; this only guards memory). */
const MAX_MEMBER_BYTES = 32 << 20

/** A manifest document as written in the bundle (site values not substituted yet). */
export interface StageDocument {
  /** "manifests/base/operator.yaml (document 2)", or "manifests/base/stage.yaml configMaps[0]" */
  source: string
  object: Record<string, unknown>
  /** Set on a ConfigMap made by a `configMaps:` generator of stage.yaml. */
  generated?: GeneratedConfigMap
}

/** How a generated ConfigMap's data is treated when the plan substitutes site values. */
export interface GeneratedConfigMap {
  /** True: `${{ site.… }}` in the files' text is substituted (as text). False: the data is left exactly as written. */
  substitute: boolean
  /** Data key → the bundle member it was read from (for problems). */
  members: Record<string, string>
}

/** The size limit of one ConfigMap (the API server refuses larger objects). */
export const MAX_CONFIGMAP_BYTES = 1 << 20

export interface StageChart {
  /** Chart name in the bundle (charts/<name>-<version>.tgz). */
  chart: string
  version: string
  /** The bundle member holding the chart archive. */
  member: string
  release: string
  namespace: string
  /** Values files (relative to the stage folder, read from the bundle) in the order given, then the inline values. */
  valuesFiles: { member: string; values: Record<string, unknown> }[]
  values: Record<string, unknown>
  /** Images the bundle recorded for this chart. */
  images: string[]
  /** "manifests/apps/stage.yaml charts[0]" */
  source: string
}

export interface ReadinessRule {
  apiVersion: string
  kind: string
  name: string
  namespace?: string
  jsonPath: string
  /** The value (as text) the path must find; without it any non-empty value will do. */
  equals?: string
  source: string
}

export interface Stage {
  name: string
  /** The stage.yaml member, when the stage has one. */
  stageFile?: string
  timeoutMs: number
  /** Namespace for namespaced manifests that name none (default: "default"). */
  namespace?: string
  documents: StageDocument[]
  charts: StageChart[]
  readiness: ReadinessRule[]
  schema?: ValuesSchema
}

/** What loadStages needs from a bundle: a BundleReader is one. */
export interface StageSource {
  metadata: BundleMetadata
  read(path: string): Promise<Buffer>
}

const yamlSchema = CORE_SCHEMA.withTags(mergeTag)

/** The stages of a bundle, in bundle order. Throws one E_INPUT error listing every problem found. */
export async function loadStages(reader: StageSource): Promise<Stage[]> {
  const problems: string[] = []
  const stages: Stage[] = []
  for (const locked of reader.metadata.stages ?? []) {
    const prefix = `manifests/${locked.name}/`
    const files = locked.files.filter((f) => f.startsWith(prefix))
    const texts = new Map<string, string>()
    const contents = new Map<string, Buffer>()
    for (const member of files) {
      const bytes = await reader.read(member)
      if (bytes.length > MAX_MEMBER_BYTES) {
        problems.push(`${member}: ${bytes.length} bytes is too large for a stage file`)
        continue
      }
      contents.set(member, bytes)
      if (isYaml(member)) texts.set(member, bytes.toString('utf8'))
    }
    const stageFile = `${prefix}${STAGE_FILE}`
    const stage = parseStage(locked.name, texts, reader.metadata.charts ?? [], problems, contents)
    if (texts.has(stageFile)) stage.stageFile = stageFile
    stages.push(stage)
  }
  if (problems.length) throw stageProblems(problems)
  return stages
}

export function stageProblems(problems: string[]): AirgapError {
  return new AirgapError(
    'E_INPUT',
    `The bundle's stages have ${problems.length === 1 ? 'a problem' : `${problems.length} problems`}:\n${problems
      .map((p) => `  ${p}`)
      .join('\n')}`,
    {
      hints: [
        'Fix the stage folder named in the bundle definition and build the bundle again; docs/stages.md describes the format.',
      ],
      data: { problems },
    },
  )
}

function isYaml(member: string): boolean {
  return /\.(ya?ml)$/i.test(member)
}

/**
 * Parses one stage from its YAML members (path → text). Pure: the unit tests call it directly. Problems are pushed
 * to `problems`; the returned stage holds whatever was valid. `files` holds every member of the stage (path → bytes,
 * YAML or not), for the ConfigMap generators; without it, the YAML members are all there is.
 */
export function parseStage(
  name: string,
  texts: Map<string, string>,
  charts: LockedChart[],
  problems: string[],
  files?: Map<string, Buffer>,
): Stage {
  const prefix = `manifests/${name}/`
  const stageFile = `${prefix}${STAGE_FILE}`
  const stage: Stage = {
    name,
    timeoutMs: DEFAULT_STAGE_TIMEOUT_MS,
    documents: [],
    charts: [],
    readiness: [],
  }
  const valuesFiles = new Set<string>()
  const stageText = texts.get(stageFile)
  const all = files ?? new Map([...texts].map(([member, text]) => [member, Buffer.from(text)]))
  if (stageText !== undefined)
    parseStageFile(stage, stageFile, stageText, texts, all, charts, valuesFiles, problems)

  const manifests = [...texts.keys()].filter((m) => m !== stageFile && !valuesFiles.has(m)).sort()
  for (const member of manifests) {
    let docs: unknown[]
    try {
      docs = loadAll(texts.get(member)!, { schema: yamlSchema, json: true, filename: member })
    } catch (error) {
      problems.push(`${member}: not valid YAML: ${(error as Error).message.split('\n')[0]}`)
      continue
    }
    docs.forEach((doc, i) => {
      if (doc === null || doc === undefined) return
      const source = docs.length > 1 ? `${member} (document ${i + 1})` : member
      for (const [object, where] of expandList(doc, source)) {
        const problem = checkManifest(object)
        if (problem) problems.push(`${where}: ${problem}`)
        else stage.documents.push({ source: where, object: object as Record<string, unknown> })
      }
    })
  }
  return stage
}

function expandList(doc: unknown, source: string): [unknown, string][] {
  if (
    isPlainObject(doc) &&
    typeof doc.kind === 'string' &&
    doc.kind.endsWith('List') &&
    Array.isArray(doc.items)
  )
    return doc.items.map((item, i) => [item, `${source} items[${i}]`])
  return [[doc, source]]
}

function checkManifest(doc: unknown): string | undefined {
  if (!isPlainObject(doc))
    return 'expected a Kubernetes object (a mapping with apiVersion, kind and metadata)'
  if (typeof doc.apiVersion !== 'string' || !doc.apiVersion) return 'apiVersion: required'
  if (typeof doc.kind !== 'string' || !doc.kind) return 'kind: required'
  if (!isPlainObject(doc.metadata)) return 'metadata: required'
  if (typeof doc.metadata.name !== 'string' || !doc.metadata.name)
    return doc.metadata.generateName
      ? 'metadata.name: required (generateName cannot be applied idempotently)'
      : 'metadata.name: required'
  if (doc.metadata.namespace !== undefined && typeof doc.metadata.namespace !== 'string')
    return 'metadata.namespace: expected text'
  return undefined
}

const STAGE_KEYS = [
  'apiVersion',
  'kind',
  'timeout',
  'namespace',
  'charts',
  'configMaps',
  'readiness',
  'values',
]
const CONFIGMAP_KEYS = ['name', 'namespace', 'labels', 'annotations', 'files', 'substitute']
const CHART_KEYS = ['chart', 'version', 'release', 'namespace', 'values', 'valuesFiles']
const RULE_KEYS = ['apiVersion', 'kind', 'name', 'namespace', 'jsonPath', 'condition', 'equals']
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

function parseStageFile(
  stage: Stage,
  member: string,
  text: string,
  texts: Map<string, string>,
  files: Map<string, Buffer>,
  charts: LockedChart[],
  valuesFiles: Set<string>,
  problems: string[],
): void {
  let docs: unknown[]
  try {
    docs = loadAll(text, { schema: yamlSchema, json: true, filename: member })
  } catch (error) {
    problems.push(`${member}: not valid YAML: ${(error as Error).message.split('\n')[0]}`)
    return
  }
  docs = docs.filter((d) => d !== null && d !== undefined)
  if (docs.length === 0) return
  if (docs.length > 1) problems.push(`${member}: expected one document, found ${docs.length}`)
  const doc = docs[0]
  if (!isPlainObject(doc)) {
    problems.push(`${member}: expected a mapping (apiVersion, kind, timeout, charts, readiness, values)`)
    return
  }
  const report = (field: string, what: string) => problems.push(`${member} ${field}: ${what}`)
  unknownKeys(doc, STAGE_KEYS, '', report)
  if (doc.apiVersion !== STAGE_API_VERSION) report('apiVersion', `expected ${STAGE_API_VERSION}`)
  if (doc.kind !== 'Stage') report('kind', 'expected Stage')
  if (doc.timeout !== undefined) {
    const ms = parseDuration(doc.timeout)
    if (ms === undefined) report('timeout', 'expected a duration such as 90s, 10m or 1h30m')
    else stage.timeoutMs = ms
  }
  if (doc.namespace !== undefined) {
    if (typeof doc.namespace !== 'string' || !DNS_LABEL.test(doc.namespace))
      report('namespace', 'expected a namespace name (lowercase letters, digits and -)')
    else stage.namespace = doc.namespace
  }

  if (doc.charts !== undefined) {
    if (!Array.isArray(doc.charts)) report('charts', 'expected a list')
    else
      doc.charts.forEach((item, i) => {
        const chart = parseChart(item, `charts[${i}]`, stage, member, texts, charts, valuesFiles, report)
        if (!chart) return
        const clash = stage.charts.find((c) => c.release === chart.release && c.namespace === chart.namespace)
        if (clash)
          report(`charts[${i}].release`, `release ${chart.namespace}/${chart.release} is listed twice`)
        else stage.charts.push(chart)
      })
  }

  if (doc.configMaps !== undefined) {
    if (!Array.isArray(doc.configMaps)) report('configMaps', 'expected a list')
    else {
      const names = new Map<string, string>()
      doc.configMaps.forEach((item, i) => {
        const field = `configMaps[${i}]`
        const made = parseConfigMap(item, field, stage, member, files, valuesFiles, report)
        if (!made) return
        const metadata = made.object.metadata as { name: string; namespace?: string }
        const key = `${metadata.namespace ?? ''}/${metadata.name}`
        const earlier = names.get(key)
        if (earlier) report(`${field}.name`, `ConfigMap ${metadata.name} is also made by ${earlier}`)
        else {
          names.set(key, field)
          stage.documents.push(made)
        }
      })
    }
  }

  if (doc.readiness !== undefined) {
    if (!Array.isArray(doc.readiness)) report('readiness', 'expected a list')
    else
      doc.readiness.forEach((item, i) => {
        const rule = parseRule(item, `readiness[${i}]`, member, report)
        if (rule) stage.readiness.push(rule)
      })
  }

  if (doc.values !== undefined) {
    if (!isPlainObject(doc.values)) report('values', 'expected a mapping with a schema')
    else {
      unknownKeys(doc.values, ['schema'], 'values.', report)
      if (doc.values.schema !== undefined) {
        const checked = checkValuesSchema(doc.values.schema, 'values.schema')
        for (const p of checked.problems) problems.push(`${member} ${p}`)
        if (checked.schema) stage.schema = checked.schema
      }
    }
  }
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/

/**
 * One entry of `configMaps:`: a ConfigMap whose data keys are the names of the files its globs match (binaryData for
 * files that are not UTF-8). The files it uses are not applied as manifests, even when they are YAML.
 */
function parseConfigMap(
  item: unknown,
  field: string,
  stage: Stage,
  member: string,
  files: Map<string, Buffer>,
  used: Set<string>,
  report: (field: string, what: string) => void,
): StageDocument | undefined {
  if (!isPlainObject(item)) {
    report(field, 'expected a mapping {name, namespace, labels, annotations, files, substitute}')
    return undefined
  }
  unknownKeys(item, CONFIGMAP_KEYS, `${field}.`, report)
  let ok = true
  if (typeof item.name !== 'string' || !DNS_SUBDOMAIN.test(item.name) || item.name.length > 253) {
    report(`${field}.name`, 'required: a ConfigMap name (lowercase letters, digits, - and .)')
    ok = false
  }
  if (
    item.namespace !== undefined &&
    (typeof item.namespace !== 'string' || !DNS_LABEL.test(item.namespace))
  ) {
    report(`${field}.namespace`, 'expected a namespace name (lowercase letters, digits and -)')
    ok = false
  }
  for (const map of ['labels', 'annotations'] as const) {
    const value = item[map]
    if (value === undefined) continue
    if (!isPlainObject(value) || Object.values(value).some((v) => typeof v !== 'string')) {
      report(`${field}.${map}`, 'expected a mapping of names to text (quote values such as "1")')
      ok = false
    }
  }
  if (item.substitute !== undefined && typeof item.substitute !== 'boolean') {
    report(`${field}.substitute`, 'expected true or false')
    ok = false
  }
  const prefix = `manifests/${stage.name}/`
  const data: Record<string, string> = {}
  const binaryData: Record<string, string> = {}
  const members: Record<string, string> = {}
  let bytes = 0
  if (!Array.isArray(item.files) || item.files.length === 0) {
    report(`${field}.files`, 'required: a list of file names or globs relative to the stage folder')
    ok = false
  } else {
    item.files.forEach((glob, j) => {
      const at = `${field}.files[${j}]`
      if (typeof glob !== 'string' || !glob || glob.startsWith('/') || glob.split('/').includes('..')) {
        report(at, 'expected a file name or glob relative to the stage folder (*, ** and ? match)')
        ok = false
        return
      }
      const pattern = globToRegExp(glob)
      const matched = [...files.keys()]
        .filter(
          (m) =>
            m.startsWith(prefix) && m !== `${prefix}${STAGE_FILE}` && pattern.test(m.slice(prefix.length)),
        )
        .sort()
      if (!matched.length) {
        report(at, `${glob} matches no file in ${prefix}`)
        ok = false
        return
      }
      for (const path of matched) {
        const key = path.slice(path.lastIndexOf('/') + 1)
        if (members[key] === path) continue
        if (!CONFIGMAP_KEY.test(key)) {
          report(at, `${path}: the file name is not a valid ConfigMap key (letters, digits, -, _ and . only)`)
          ok = false
          continue
        }
        if (members[key] !== undefined) {
          report(at, `${path} and ${members[key]} would both be the key ${key}`)
          ok = false
          continue
        }
        members[key] = path
        used.add(path)
        const content = files.get(path)!
        const text = utf8(content)
        if (text === undefined) {
          binaryData[key] = content.toString('base64')
          bytes += key.length + binaryData[key].length
        } else {
          data[key] = text
          bytes += key.length + content.length
        }
      }
    })
  }
  if (bytes > MAX_CONFIGMAP_BYTES) {
    report(
      `${field}.files`,
      `the ConfigMap would hold ${bytes} bytes, more than the ${MAX_CONFIGMAP_BYTES} bytes (1 MiB) a ConfigMap can hold; split it`,
    )
    ok = false
  }
  if (!ok) return undefined
  const metadata: Record<string, unknown> = { name: item.name }
  if (item.namespace !== undefined) metadata.namespace = item.namespace
  if (item.labels !== undefined) metadata.labels = item.labels
  if (item.annotations !== undefined) metadata.annotations = item.annotations
  const object: Record<string, unknown> = { apiVersion: 'v1', kind: 'ConfigMap', metadata }
  if (Object.keys(data).length) object.data = data
  if (Object.keys(binaryData).length) object.binaryData = binaryData
  return {
    source: `${member} ${field}`,
    object,
    generated: { substitute: item.substitute === true, members },
  }
}

function utf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}

/** A glob relative to the stage folder: `*` and `?` within a folder name, `**` across folders. */
export function globToRegExp(glob: string): RegExp {
  let out = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/'
      out += slash ? '(?:.*/)?' : '.*'
      i += slash ? 2 : 1
    } else if (c === '*') out += '[^/]*'
    else if (c === '?') out += '[^/]'
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${out}$`)
}

function parseChart(
  item: unknown,
  field: string,
  stage: Stage,
  member: string,
  texts: Map<string, string>,
  charts: LockedChart[],
  valuesFiles: Set<string>,
  report: (field: string, what: string) => void,
): StageChart | undefined {
  if (!isPlainObject(item)) {
    report(field, 'expected a mapping {chart, version, release, namespace, values, valuesFiles}')
    return undefined
  }
  unknownKeys(item, CHART_KEYS, `${field}.`, report)
  const name = item.chart
  if (typeof name !== 'string' || !name) {
    report(`${field}.chart`, 'required: the name of a chart in the bundle')
    return undefined
  }
  if (item.version !== undefined && typeof item.version !== 'string')
    report(`${field}.version`, 'expected text (quote versions such as "1.10")')
  const candidates = charts.filter((c) => c.name === name)
  const locked =
    typeof item.version === 'string'
      ? candidates.find((c) => c.version === item.version)
      : candidates.length === 1
        ? candidates[0]
        : undefined
  if (!locked) {
    const have = charts.map((c) => `${c.name} ${c.version}`).join(', ') || 'none'
    if (candidates.length > 1 && item.version === undefined)
      report(
        `${field}.version`,
        `the bundle has several versions of ${name}: say which one (it has: ${have})`,
      )
    else {
      const near = closestMatch(
        name,
        charts.map((c) => c.name),
      )
      report(
        `${field}.chart`,
        `the bundle has no chart ${name}${typeof item.version === 'string' ? ` ${item.version}` : ''}${near && near !== name ? ` (did you mean ${near}?)` : ''}; it has: ${have}`,
      )
    }
    return undefined
  }
  const release = item.release ?? name
  if (typeof release !== 'string' || !DNS_LABEL.test(release) || release.length > 53) {
    report(
      `${field}.release`,
      'expected a release name (lowercase letters, digits and -, at most 53 characters)',
    )
    return undefined
  }
  const namespace = item.namespace ?? stage.namespace
  if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace)) {
    report(`${field}.namespace`, 'required: the namespace to install the release into (or a stage namespace)')
    return undefined
  }
  if (item.values !== undefined && !isPlainObject(item.values))
    report(`${field}.values`, 'expected a mapping')
  const files: StageChart['valuesFiles'] = []
  if (item.valuesFiles !== undefined) {
    if (!Array.isArray(item.valuesFiles)) report(`${field}.valuesFiles`, 'expected a list of file names')
    else
      item.valuesFiles.forEach((file, j) => {
        const at = `${field}.valuesFiles[${j}]`
        if (typeof file !== 'string' || !file || file.startsWith('/') || file.split('/').includes('..')) {
          report(at, 'expected a file name relative to the stage folder')
          return
        }
        const path = `manifests/${stage.name}/${file}`
        const text = texts.get(path)
        if (text === undefined) {
          report(at, `${path} is not in the bundle (values files are .yaml files next to stage.yaml)`)
          return
        }
        valuesFiles.add(path)
        let values: unknown
        try {
          values = loadAll(text, { schema: yamlSchema, json: true, filename: path })[0] ?? {}
        } catch (error) {
          report(at, `${path} is not valid YAML: ${(error as Error).message.split('\n')[0]}`)
          return
        }
        if (!isPlainObject(values)) report(at, `${path}: expected a mapping of values`)
        else files.push({ member: path, values })
      })
  }
  return {
    chart: locked.name,
    version: locked.version,
    member: chartPath(locked.name, locked.version),
    release,
    namespace,
    valuesFiles: files,
    values: isPlainObject(item.values) ? item.values : {},
    images: locked.images ?? [],
    source: `${member} ${field}`,
  }
}

function parseRule(
  item: unknown,
  field: string,
  member: string,
  report: (field: string, what: string) => void,
): ReadinessRule | undefined {
  if (!isPlainObject(item)) {
    report(field, 'expected a mapping {apiVersion, kind, name, namespace, jsonPath, equals}')
    return undefined
  }
  unknownKeys(item, RULE_KEYS, `${field}.`, report)
  let ok = true
  for (const key of ['apiVersion', 'kind', 'name'] as const) {
    if (typeof item[key] !== 'string' || !item[key]) {
      report(`${field}.${key}`, 'required')
      ok = false
    }
  }
  if (item.namespace !== undefined && typeof item.namespace !== 'string') {
    report(`${field}.namespace`, 'expected text')
    ok = false
  }
  let jsonPath: string | undefined
  let equals: string | undefined
  if (item.equals !== undefined) {
    if (['string', 'number', 'boolean'].includes(typeof item.equals)) equals = String(item.equals)
    else {
      report(`${field}.equals`, 'expected a text, number or boolean')
      ok = false
    }
  }
  if (item.condition !== undefined) {
    if (item.jsonPath !== undefined) report(`${field}`, 'give either condition or jsonPath, not both')
    if (typeof item.condition !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(item.condition)) {
      report(`${field}.condition`, 'expected a condition type such as Ready')
      return undefined
    }
    jsonPath = `{.status.conditions[?(@.type=="${item.condition}")].status}`
    equals ??= 'True'
  } else if (typeof item.jsonPath === 'string') {
    try {
      parseJsonPath(item.jsonPath)
      jsonPath = item.jsonPath
    } catch (error) {
      report(`${field}.jsonPath`, error instanceof JsonPathError ? error.message : String(error))
      ok = false
    }
  } else {
    report(`${field}.jsonPath`, 'required (or condition: <type>)')
    ok = false
  }
  if (!ok || !jsonPath) return undefined
  const rule: ReadinessRule = {
    apiVersion: item.apiVersion as string,
    kind: item.kind as string,
    name: item.name as string,
    jsonPath,
    source: `${member} ${field}`,
  }
  if (typeof item.namespace === 'string') rule.namespace = item.namespace
  if (equals !== undefined) rule.equals = equals
  return rule
}

function unknownKeys(
  doc: Record<string, unknown>,
  known: string[],
  prefix: string,
  report: (field: string, what: string) => void,
): void {
  for (const key of Object.keys(doc)) {
    if (known.includes(key)) continue
    const near = closestMatch(key, known)
    report(
      `${prefix}${key}`,
      `unknown field${near ? ` (did you mean "${near}"?)` : ''}; expected one of ${known.join(', ')}`,
    )
  }
}

/** "90s", "10m", "1h30m", "500ms" or a number of seconds → milliseconds; undefined when not a duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value * 1000 : undefined
  if (typeof value !== 'string') return undefined
  const match = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(value.trim())
  if (!match || value.trim() === '') return undefined
  const [, h, m, s, ms] = match
  const total = Number(h ?? 0) * 3_600_000 + Number(m ?? 0) * 60_000 + Number(s ?? 0) * 1000 + Number(ms ?? 0)
  return total > 0 ? total : undefined
}
