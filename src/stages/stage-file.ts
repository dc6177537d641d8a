/**
 * Reads a stage.yaml (docs/stages.md): apiVersion and kind, a timeout, a namespace, Helm charts from the bundle with
 * values and values files, ConfigMaps made from files, readiness rules and the schema of the site values. Every
 * problem names the field and its file:line:col.
 */
import { CORE_SCHEMA, loadAll, mergeTag } from 'js-yaml'
import { chartPath } from '../bundle/layout.js'
import type { LockedChart } from '../bundle/metadata.js'
import { closestMatch } from '../spec/closest-match.js'
import { JsonPathError, parseJsonPath } from './jsonpath.js'
import { isPlainObject } from './objects.js'
import { checkValuesSchema, isSiteReference } from './site-values.js'
import { parseConfigMap } from './stage-configmaps.js'
import { stageFileReporter, unknownKeys } from './stage-problems.js'
import {
  DNS_LABEL,
  type ReadinessRule,
  STAGE_API_VERSION,
  type Stage,
  type StageChart,
  type StageProblem,
  type StageReport,
} from './stage-types.js'

/** How stage members are read: YAML 1.2 core types and merge keys (with `json: true`, a repeated key keeps the last). */
export const STAGE_YAML_SCHEMA = CORE_SCHEMA.withTags(mergeTag)

const STAGE_KEYS = [
  'apiVersion',
  'kind',
  'timeout',
  'namespace',
  'enabled',
  'charts',
  'configMaps',
  'readiness',
  'values',
]
const CHART_KEYS = ['chart', 'version', 'release', 'namespace', 'values', 'valuesFiles']
const RULE_KEYS = ['apiVersion', 'kind', 'name', 'namespace', 'jsonPath', 'condition', 'equals']

/**
 * Reads the stage.yaml `member` (text `text`) into `stage`. `texts` and `files` are the stage's members (for values
 * files and ConfigMap generators); the members they use are added to `valuesFiles`, so that they are not applied as
 * manifests. Problems, each with its file:line:col, are pushed to `problems`.
 */
export function parseStageFile(
  stage: Stage,
  member: string,
  text: string,
  texts: Map<string, string>,
  files: Map<string, Buffer>,
  charts: LockedChart[],
  valuesFiles: Set<string>,
  problems: StageProblem[],
): void {
  // The values are read as every stage member is (js-yaml); the YAML checker's parse of the same text locates problems.
  const { field: report, document } = stageFileReporter(member, text, problems)
  let docs: unknown[]
  try {
    docs = loadAll(text, { schema: STAGE_YAML_SCHEMA, json: true, filename: member })
  } catch (error) {
    const mark = (error as { mark?: { line?: number; column?: number } }).mark
    const position =
      typeof mark?.line === 'number' && typeof mark.column === 'number'
        ? { line: mark.line + 1, column: mark.column + 1 }
        : { line: 1, column: 1 }
    document(`not valid YAML: ${(error as Error).message.split('\n')[0]}`, position)
    return
  }
  docs = docs.filter((d) => d !== null && d !== undefined)
  if (docs.length === 0) return
  if (docs.length > 1) document(`expected one document, found ${docs.length}`)
  const doc = docs[0]
  if (!isPlainObject(doc)) {
    document('expected a mapping (apiVersion, kind, timeout, charts, readiness, values)')
    return
  }
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

  if (doc.enabled !== undefined) {
    if (typeof doc.enabled === 'boolean' || isSiteReference(doc.enabled)) stage.enabled = doc.enabled
    else
      report(
        'enabled',
        `expected true, false or one site value reference such as $${'{{'} site.registry.enabled }}`,
      )
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
        for (const p of checked.problems) {
          // "<field>: <what is wrong>"
          const split = p.indexOf(': ')
          if (split < 0) problems.push({ text: `${member} ${p}` })
          else report(p.slice(0, split), p.slice(split + 2))
        }
        if (checked.schema) stage.schema = checked.schema
      }
    }
  }
}

function parseChart(
  item: unknown,
  field: string,
  stage: Stage,
  member: string,
  texts: Map<string, string>,
  charts: LockedChart[],
  valuesFiles: Set<string>,
  report: StageReport,
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
          values = loadAll(text, { schema: STAGE_YAML_SCHEMA, json: true, filename: path })[0] ?? {}
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
  report: StageReport,
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
