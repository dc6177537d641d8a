/**
 * Loads the install stages of a bundle: every member under manifests/<stage>/ (the stage folder of the bundle
 * definition). A stage is its plain Kubernetes manifests (*.yaml, *.yml, several documents per file), and optionally
 * a stage.yaml with Helm charts to install from the bundle, extra readiness rules, a timeout and the schema of the
 * site values it needs (read by stage-file.ts). The format is documented in docs/stages.md. Everything is checked
 * here, before anything touches a cluster; every problem names the bundle member and the field, and those of a
 * stage.yaml its line and column.
 */
import { loadAll } from 'js-yaml'
import type { LockedChart } from '../bundle/metadata.js'
import { isPlainObject } from './objects.js'
import { parseStageFile, STAGE_YAML_SCHEMA } from './stage-file.js'
import { stageProblems } from './stage-problems.js'
import {
  DEFAULT_STAGE_TIMEOUT_MS,
  STAGE_FILE,
  type Stage,
  type StageProblem,
  type StageSource,
} from './stage-types.js'

// What loading stages yields, and the helpers its tests use, for importers of this module.
export { globToRegExp } from './stage-configmaps.js'
export { parseDuration } from './stage-file.js'
export { stageProblems } from './stage-problems.js'
export type {
  GeneratedConfigMap,
  ReadinessRule,
  Stage,
  StageChart,
  StageDocument,
  StageSource,
} from './stage-types.js'
export {
  DEFAULT_STAGE_TIMEOUT_MS,
  MAX_CONFIGMAP_BYTES,
  STAGE_API_VERSION,
  STAGE_FILE,
} from './stage-types.js'

/** Members larger than this are not parsed (a stage is text; this only guards memory). */
const MAX_MEMBER_BYTES = 32 << 20

/** The stages of a bundle, in bundle order. Throws one E_INPUT error listing every problem found. */
export async function loadStages(reader: StageSource): Promise<Stage[]> {
  const problems: StageProblem[] = []
  const stages: Stage[] = []
  for (const locked of reader.metadata.stages ?? []) {
    const prefix = `manifests/${locked.name}/`
    const files = locked.files.filter((f) => f.startsWith(prefix))
    const texts = new Map<string, string>()
    const contents = new Map<string, Buffer>()
    for (const member of files) {
      const bytes = await reader.read(member)
      if (bytes.length > MAX_MEMBER_BYTES) {
        problems.push({ text: `${member}: ${bytes.length} bytes is too large for a stage file` })
        continue
      }
      contents.set(member, bytes)
      if (isYaml(member)) texts.set(member, bytes.toString('utf8'))
    }
    const stageFile = `${prefix}${STAGE_FILE}`
    const stage = checkStage(locked.name, texts, reader.metadata.charts ?? [], problems, contents)
    if (texts.has(stageFile)) stage.stageFile = stageFile
    stages.push(stage)
  }
  if (problems.length) throw stageProblems(problems)
  return stages
}

function isYaml(member: string): boolean {
  return /\.(ya?ml)$/i.test(member)
}

/**
 * Parses one stage from its YAML members (path → text). Pure: the unit tests call it directly. Problems are pushed
 * to `problems` as one-line texts; the returned stage holds whatever was valid. `files` holds every member of the
 * stage (path → bytes, YAML or not), for the ConfigMap generators; without it, the YAML members are all there is.
 */
export function parseStage(
  name: string,
  texts: Map<string, string>,
  charts: LockedChart[],
  problems: string[],
  files?: Map<string, Buffer>,
): Stage {
  const found: StageProblem[] = []
  const stage = checkStage(name, texts, charts, found, files)
  problems.push(...found.map((p) => p.text))
  return stage
}

/** parseStage, with the problems of stage.yaml located (file:line:col). */
function checkStage(
  name: string,
  texts: Map<string, string>,
  charts: LockedChart[],
  problems: StageProblem[],
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
      docs = loadAll(texts.get(member)!, { schema: STAGE_YAML_SCHEMA, json: true, filename: member })
    } catch (error) {
      problems.push({ text: `${member}: not valid YAML: ${(error as Error).message.split('\n')[0]}` })
      continue
    }
    docs.forEach((doc, i) => {
      if (doc === null || doc === undefined) return
      const source = docs.length > 1 ? `${member} (document ${i + 1})` : member
      for (const [object, where] of expandList(doc, source)) {
        const problem = checkManifest(object)
        if (problem) problems.push({ text: `${where}: ${problem}` })
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
