import { stat, writeFile } from 'node:fs/promises'
import { dump } from 'js-yaml'
import { chartPath, stageFilePath } from '../bundle/layout.js'
import type { BundleMetadata, LockedChart } from '../bundle/metadata.js'
import { BundleReader } from '../bundle/reader.js'
import { readStageFiles } from '../bundle/stage-files.js'
import { AirgapError } from '../errors.js'
import { loadBundleSpec } from '../spec/load.js'
import { isRepoChart } from '../spec/types.js'
import { GENERATED_SECRET } from './generated-values.js'
import { loadStages, type Stage, type StageSource } from './load-stages.js'
import { isPlainObject } from './objects.js'
import type { StageSchema, ValuesSchema } from './site-values.js'
import { DEFAULT_INSTALL_NAMESPACE } from './state.js'

/**
 * `init-site`: writes the site values file of a bundle, generated from its stages' `values.schema`: every value with
 * its description as a comment, defaults filled in, required values without a default as empty placeholders (an
 * empty value is null, which `install` refuses as "required", so an unfilled file cannot install), and the values
 * the installer generates (`generate: password`) left out with a comment saying so. Works on a bundle (its
 * manifests/<stage>/stage.yaml members) or on a bundle definition (the stage folders it names, before bundling).
 */
export interface InitSiteOptions {
  /** A bundle (file, first split volume or extracted folder) or a bundle definition (bundles/x.yaml). */
  source: string
  /** The base of a delta bundle (its stage files may be there). */
  base?: string
  /** Where to write the values file; "-" writes nothing (the text is in the result). Default: <name>-site.yaml. */
  output?: string
  /** Overwrite an existing output file. */
  force?: boolean
}

export interface InitSiteResult {
  /** The file written, or "-" for none. */
  path: string
  bundle: { name: string; version: string }
  from: 'bundle' | 'definition'
  /** Stages that declare site values, in order. */
  stages: string[]
  /** Paths of the values the site must fill in (written as empty placeholders). */
  required: string[]
  /** Paths of the values generated on the site when left out (written commented out). */
  generated: string[]
  /** The file's text. */
  text: string
}

export async function initSite(options: InitSiteOptions): Promise<InitSiteResult> {
  const loaded = await loadStagesFrom(options.source, options.base)
  const schemas = loaded.stages.filter((s) => s.schema).map((s) => ({ stage: s.name, schema: s.schema! }))
  const rendered = renderSiteValues(schemas, {
    title: `${loaded.name} ${loaded.version}`,
    source: options.source,
  })
  const path = options.output ?? `${loaded.name}-site.yaml`
  if (path !== '-') {
    try {
      await writeFile(path, rendered.text, { flag: options.force ? 'w' : 'wx', mode: 0o644 })
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'EEXIST')
        throw new AirgapError('E_USAGE', `${path} exists; init-site does not overwrite it.`, {
          hints: ['Give another file with --output, or add --force to replace it.'],
        })
      throw new AirgapError('E_ENVIRONMENT', `Cannot write ${path}: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }
  return {
    path,
    bundle: { name: loaded.name, version: loaded.version },
    from: loaded.from,
    stages: schemas.map((s) => s.stage),
    required: rendered.required,
    generated: rendered.generated,
    text: rendered.text,
  }
}

/** The stages of a bundle, or of a bundle definition read from its stage folders. */
export async function loadStagesFrom(
  source: string,
  base?: string,
): Promise<{ name: string; version: string; from: 'bundle' | 'definition'; stages: Stage[] }> {
  if (/\.ya?ml$/i.test(source)) {
    const info = await stat(source).catch(() => undefined)
    if (info?.isFile()) return loadDefinitionStages(source)
  }
  const reader = await BundleReader.open(source, base ? { base } : {})
  try {
    const stages = await loadStages(reader)
    return { name: reader.metadata.name, version: reader.metadata.version, from: 'bundle', stages }
  } finally {
    await reader.close()
  }
}

async function loadDefinitionStages(
  file: string,
): Promise<{ name: string; version: string; from: 'definition'; stages: Stage[] }> {
  const spec = await loadBundleSpec(file)
  const members = new Map<string, Buffer>()
  const stages: BundleMetadata['stages'] = []
  for (const stage of await readStageFiles(spec)) {
    const names: string[] = []
    for (const file of stage.files) {
      const member = stageFilePath(stage.name, file.relative)
      members.set(member, file.bytes)
      names.push(member)
    }
    stages.push({ name: stage.name, files: names })
  }
  // The charts are not fetched: stage.yaml only needs their names and versions to be checked.
  // A chart from git or a folder has the version of its Chart.yaml, unknown until it is fetched: '' here.
  const charts: LockedChart[] = spec.charts.map((c) => ({
    name: c.name,
    version: c.version ?? '',
    ...(isRepoChart(c) ? { repo: c.repo } : {}),
    sha256: '',
    path: chartPath(c.name, c.version ?? ''),
    oci: { repository: `charts/${c.name}`, tag: c.version ?? '', digest: '' },
    images: [],
  }))
  const reader: StageSource = {
    metadata: { name: spec.metadata.name, version: spec.metadata.version, charts, stages } as BundleMetadata,
    read: async (member) => {
      const bytes = members.get(member)
      if (!bytes) throw new AirgapError('E_INTERNAL', `no stage file ${member}`)
      return bytes
    },
  }
  return {
    name: spec.metadata.name,
    version: spec.metadata.version,
    from: 'definition',
    stages: await loadStages(reader),
  }
}

// --- rendering ---------------------------------------------------------------------------------------------------

/** One value as all the stages that declare it see it together. */
interface Merged {
  schema: ValuesSchema
  stages: string[]
  /** Some stage lists it in its parent's `required`. */
  required: boolean
  properties: Map<string, Merged>
}

function merge(into: Merged | undefined, schema: ValuesSchema, stage: string, required: boolean): Merged {
  const node: Merged = into ?? { schema: {}, stages: [], required: false, properties: new Map() }
  if (!node.stages.includes(stage)) node.stages.push(stage)
  node.required ||= required
  for (const key of [
    'type',
    'description',
    'pattern',
    'enum',
    'minimum',
    'maximum',
    'default',
    'generate',
    'items',
  ] as const) {
    if (node.schema[key] === undefined && schema[key] !== undefined)
      (node.schema as Record<string, unknown>)[key] = schema[key]
  }
  for (const [key, child] of Object.entries(schema.properties ?? {}))
    node.properties.set(
      key,
      merge(node.properties.get(key), child, stage, (schema.required ?? []).includes(key)),
    )
  return node
}

/** Every stage's schema merged into one tree (properties in the order the stages first declare them). */
export function mergeSchemas(schemas: StageSchema[]): Merged {
  let root: Merged | undefined
  for (const { stage, schema } of schemas) root = merge(root, schema, stage, true)
  return root ?? { schema: {}, stages: [], required: true, properties: new Map() }
}

type Plan = 'value' | 'placeholder' | 'object' | 'empty-object' | 'commented'

/**
 * The site values file for these schemas. `required` lists the placeholders the site must fill in, `generated` the
 * values left out for the installer to generate.
 */
export function renderSiteValues(
  schemas: StageSchema[],
  header: { title: string; source: string },
): { text: string; required: string[]; generated: string[] } {
  const root = mergeSchemas(schemas)
  const required: string[] = []
  const generated: string[] = []
  const lines: string[] = [
    `# Site values for ${header.title}, written by \`astrago-airgap init-site ${header.source}\`.`,
    '#',
    '# Fill in every value marked REQUIRED (install refuses this file while one is empty), check the others, then:',
    '#   astrago-airgap install <bundle> --values <this file> --dry-run   # checks the values, touches nothing',
    '#   astrago-airgap install <bundle> --values <this file>',
    '# A value left out takes the default shown. Passwords marked "generated" are made on the site at the first',
    `# install when left out, kept in the Secret ${DEFAULT_INSTALL_NAMESPACE}/${GENERATED_SECRET} and shown once; give one here`,
    '# only to choose it yourself. docs/stages.md describes site values.',
  ]
  if (!root.properties.size) lines.push('#', '# The stages of this bundle need no site values.', '{}')
  for (const [key, node] of root.properties) {
    lines.push('')
    renderProperty(lines, key, node, node.required, undefined, '', key, false, { required, generated }, true)
  }
  return { text: `${lines.join('\n')}\n`, required, generated }
}

/** Whether a value is written (and how), given whether its parent requires it. */
function planOf(node: Merged, required: boolean, inherited: unknown): Plan {
  if (node.schema.generate === 'password') return 'commented'
  const own = node.schema.default ?? inherited
  if (node.properties.size) {
    const active =
      required || own !== undefined || [...node.properties.values()].some((child) => hasDefault(child))
    if (!active) return 'commented'
    const children = [...node.properties.entries()].map(([key, child]) =>
      planOf(child, child.required, isPlainObject(own) ? own[key] : undefined),
    )
    if (children.some((c) => c !== 'commented')) return 'object'
    return hasGenerated(node) || !required ? 'commented' : 'empty-object'
  }
  if (own !== undefined) return 'value'
  return required ? 'placeholder' : 'commented'
}

function hasDefault(node: Merged): boolean {
  if (node.schema.generate) return false
  return node.schema.default !== undefined || [...node.properties.values()].some(hasDefault)
}

function hasGenerated(node: Merged): boolean {
  return node.schema.generate === 'password' || [...node.properties.values()].some(hasGenerated)
}

function renderProperty(
  lines: string[],
  key: string,
  node: Merged,
  required: boolean,
  inherited: unknown,
  indent: string,
  path: string,
  commented: boolean,
  found: { required: string[]; generated: string[] },
  top: boolean,
): void {
  const plan = commented ? 'commented' : planOf(node, required, inherited)
  const prefix = plan === 'commented' ? `${indent}# ` : indent
  const describe = [
    ...wrap(node.schema.description ?? '', 110 - indent.length),
    ...(top && node.stages.length
      ? [`(stage${node.stages.length > 1 ? 's' : ''} ${node.stages.join(', ')})`]
      : []),
  ]
  const constraint = constraintOf(node)
  if (constraint) describe.push(constraint)
  if (node.schema.generate === 'password') {
    describe.push(
      `Generated on the site when left empty (a random password, kept in the Secret ${GENERATED_SECRET}, shown once).`,
    )
    found.generated.push(path)
  }
  for (const line of describe) lines.push(`${indent}# ${line}`)
  const own = node.schema.default ?? inherited
  if (node.properties.size && plan !== 'value' && plan !== 'placeholder') {
    if (plan === 'empty-object') lines.push(`${prefix}${key}: {}`)
    else lines.push(`${prefix}${key}:`)
    for (const [childKey, child] of node.properties)
      renderProperty(
        lines,
        childKey,
        child,
        child.required,
        isPlainObject(own) ? own[childKey] : undefined,
        plan === 'commented' ? `${indent}#   ` : `${indent}  `,
        `${path}.${childKey}`,
        plan !== 'object',
        found,
        false,
      )
    return
  }
  if (plan === 'placeholder') {
    lines.push(`${indent}${key}: # REQUIRED: fill in (install refuses this file while it is empty)`)
    found.required.push(path)
    return
  }
  if (plan === 'value') {
    lines.push(`${indent}${key}: ${scalar(own)}`)
    return
  }
  // Commented out: an optional value without a default, a generated one, or one inside a commented-out block.
  const example =
    own !== undefined ? ` ${scalar(own)}` : node.schema.enum?.length ? ` ${scalar(node.schema.enum[0])}` : ''
  if (commented && required && own === undefined && !node.schema.generate && !node.properties.size)
    lines.push(`${prefix}${key}:${example} # required when ${parentOf(path)} is given`)
  else lines.push(`${prefix}${key}:${example}`)
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('.'))
}

function scalar(value: unknown): string {
  return dump(value, { flowLevel: 0 }).trimEnd()
}

function constraintOf(node: Merged): string | undefined {
  const s = node.schema
  const parts: string[] = []
  switch (s.type) {
    case 'string':
      parts.push(s.generate ? 'text (a password)' : 'text')
      break
    case 'integer':
      parts.push('a whole number')
      break
    case 'number':
      parts.push('a number')
      break
    case 'boolean':
      parts.push('true or false')
      break
    case 'array':
      parts.push('a list')
      break
    default:
      return s.enum ? `one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}` : undefined
  }
  if (s.minimum !== undefined && s.maximum !== undefined) parts.push(`from ${s.minimum} to ${s.maximum}`)
  else if (s.minimum !== undefined) parts.push(`at least ${s.minimum}`)
  else if (s.maximum !== undefined) parts.push(`at most ${s.maximum}`)
  if (s.pattern !== undefined && !s.generate) parts.push(`matching ${s.pattern}`)
  if (s.enum) parts.push(`one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`)
  if (parts.length === 1 && parts[0] === 'text') return undefined
  return `${parts.join(', ')}.`
}

function wrap(text: string, width: number): string[] {
  const out: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  if (line) out.push(line)
  return out
}
