import { readFile } from 'node:fs/promises'
import { CORE_SCHEMA, loadAll, mergeTag } from 'js-yaml'
import { AirgapError } from '../errors.js'
import { closestMatch } from '../spec/closest-match.js'
import { isPlainObject } from './objects.js'

/**
 * Site values: the facts only the site knows (NFS server, domain, registry), given as one YAML file with --values.
 * Each stage declares the values it needs with a small JSON-Schema subset in its stage.yaml, and manifests, chart
 * values and readiness rules refer to them as `${{ site.nfs.server }}`. Substitution is a plain lookup: there are no
 * expressions, functions or code, and a value is inserted as data (never re-parsed as YAML), so a site value cannot
 * change the structure of a manifest.
 */
export type ValueType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean'

export interface ValuesSchema {
  type?: ValueType
  description?: string
  /** For objects: properties that must be present (after defaults). */
  required?: string[]
  properties?: Record<string, ValuesSchema>
  /** For objects: false refuses properties not listed in `properties` (catches misspelt keys). */
  additionalProperties?: boolean
  /** For arrays: the schema of every element. */
  items?: ValuesSchema
  /** For strings: a regular expression the whole value must match (anchor it with ^…$). */
  pattern?: string
  enum?: unknown[]
  minimum?: number
  maximum?: number
  default?: unknown
  /**
   * For strings: `password` makes the installer generate a random value when the site gives none, keep it in a
   * Secret in the installer's namespace, and reuse it on every later run (see generated-values.ts).
   */
  generate?: 'password'
}

const TYPES: readonly ValueType[] = ['object', 'array', 'string', 'integer', 'number', 'boolean']
const KEYWORDS = [
  'type',
  'description',
  'required',
  'properties',
  'additionalProperties',
  'items',
  'pattern',
  'enum',
  'minimum',
  'maximum',
  'default',
  'generate',
]

/**
 * Checks that `raw` is a schema of the supported subset; returns it typed, or the problems, each starting with the
 * field path under `at` (e.g. `values.schema.properties.nfs.type`).
 */
export function checkValuesSchema(raw: unknown, at: string): { schema?: ValuesSchema; problems: string[] } {
  const problems: string[] = []
  const visit = (node: unknown, path: string): void => {
    if (!isPlainObject(node)) {
      problems.push(`${path}: expected a schema (a mapping with type, properties, …)`)
      return
    }
    for (const key of Object.keys(node)) {
      if (!KEYWORDS.includes(key)) {
        const near = closestMatch(key, KEYWORDS)
        problems.push(
          `${path}: unknown schema keyword "${key}"${near ? ` (did you mean "${near}"?)` : ''}; supported: ${KEYWORDS.join(', ')}`,
        )
      }
    }
    if (node.type !== undefined && !TYPES.includes(node.type as ValueType))
      problems.push(`${path}.type: expected one of ${TYPES.join(', ')}`)
    if (node.description !== undefined && typeof node.description !== 'string')
      problems.push(`${path}.description: expected text`)
    if (
      node.required !== undefined &&
      (!Array.isArray(node.required) || node.required.some((r) => typeof r !== 'string'))
    )
      problems.push(`${path}.required: expected a list of property names`)
    if (node.properties !== undefined) {
      if (!isPlainObject(node.properties)) problems.push(`${path}.properties: expected a mapping`)
      else for (const [k, v] of Object.entries(node.properties)) visit(v, `${path}.properties.${k}`)
    }
    if (node.additionalProperties !== undefined && typeof node.additionalProperties !== 'boolean')
      problems.push(`${path}.additionalProperties: expected true or false`)
    if (node.items !== undefined) visit(node.items, `${path}.items`)
    if (node.pattern !== undefined) {
      if (typeof node.pattern !== 'string') problems.push(`${path}.pattern: expected a regular expression`)
      else {
        try {
          new RegExp(node.pattern, 'u')
        } catch (error) {
          problems.push(`${path}.pattern: ${(error as Error).message}`)
        }
      }
    }
    if (node.enum !== undefined && (!Array.isArray(node.enum) || node.enum.length === 0))
      problems.push(`${path}.enum: expected a non-empty list`)
    for (const bound of ['minimum', 'maximum'] as const)
      if (node[bound] !== undefined && typeof node[bound] !== 'number')
        problems.push(`${path}.${bound}: expected a number`)
    if (node.generate !== undefined && (node.generate !== 'password' || node.type !== 'string'))
      problems.push(`${path}.generate: only "password", on a value of type string`)
    if (node.default !== undefined && problems.length === 0) {
      for (const p of validateValue(node.default, node as ValuesSchema, 'default'))
        problems.push(`${path}.${p}`)
    }
  }
  visit(raw, at)
  return problems.length ? { problems } : { schema: raw as ValuesSchema, problems }
}

/** Fills in defaults where values are missing; objects are created when something below them has a default. */
export function applyDefaults(schema: ValuesSchema, value: unknown): unknown {
  let current = value === undefined && schema.default !== undefined ? structuredClone(schema.default) : value
  if (schema.properties && (current === undefined || isPlainObject(current))) {
    const out: Record<string, unknown> = { ...((current as Record<string, unknown> | undefined) ?? {}) }
    let added = false
    for (const [key, sub] of Object.entries(schema.properties)) {
      const next = applyDefaults(sub, out[key])
      if (next !== undefined && out[key] === undefined) added = true
      if (next !== undefined) out[key] = next
    }
    if (current !== undefined || added) current = out
  }
  if (schema.items && Array.isArray(current))
    current = current.map((item) => applyDefaults(schema.items!, item))
  return current
}

/**
 * Validates `value` against `schema`; each problem is `<path>: <what is wrong>`, with the path in dots
 * (`nfs.server: required`, `gpus[1].model: expected text`).
 */
export function validateValue(value: unknown, schema: ValuesSchema, path: string): string[] {
  const problems: string[] = []
  const at = path || '(top level)'
  if (value === undefined) return problems
  if (schema.type && !hasType(value, schema.type)) {
    problems.push(`${at}: expected ${typeWord(schema.type)}, got ${describe(value)}`)
    return problems
  }
  if (schema.enum && !schema.enum.some((e) => deepEqual(e, value)))
    problems.push(`${at}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`)
  if (typeof value === 'string' && schema.pattern !== undefined) {
    if (!new RegExp(schema.pattern, 'u').test(value))
      problems.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`)
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum)
      problems.push(`${at}: must be at least ${schema.minimum}`)
    if (schema.maximum !== undefined && value > schema.maximum)
      problems.push(`${at}: must be at most ${schema.maximum}`)
  }
  if (isPlainObject(value)) {
    for (const key of schema.required ?? [])
      if (value[key] === undefined || value[key] === null) problems.push(`${join(path, key)}: required`)
    for (const [key, sub] of Object.entries(schema.properties ?? {}))
      problems.push(...validateValue(value[key], sub, join(path, key)))
    if (schema.additionalProperties === false) {
      const known = Object.keys(schema.properties ?? {})
      for (const key of Object.keys(value)) {
        if (known.includes(key)) continue
        const near = closestMatch(key, known)
        problems.push(`${join(path, key)}: unknown value${near ? ` (did you mean "${near}"?)` : ''}`)
      }
    }
  }
  if (Array.isArray(value) && schema.items)
    for (const [i, item] of value.entries())
      problems.push(...validateValue(item, schema.items, `${path}[${i}]`))
  return problems
}

export interface StageSchema {
  stage: string
  schema: ValuesSchema
}

/**
 * Applies every stage's defaults (in stage order) to the site values, then validates them against every stage's
 * schema. Throws one E_INPUT error listing every problem, each naming the value's path and the stage that needs it.
 */
export function resolveSiteValues(
  siteValues: Record<string, unknown>,
  schemas: StageSchema[],
  source = 'the site values',
): Record<string, unknown> {
  if (!isPlainObject(siteValues))
    throw new AirgapError('E_INPUT', `${source}: expected a mapping of names to values at the top.`)
  let values: Record<string, unknown> = structuredClone(siteValues)
  for (const { schema } of schemas) values = (applyDefaults(schema, values) as Record<string, unknown>) ?? {}
  const problems: string[] = []
  for (const { stage, schema } of schemas) {
    for (const problem of validateValue(values, schema, '')) {
      const line = `${problem} (stage ${stage})`
      if (!problems.includes(line)) problems.push(line)
    }
  }
  if (problems.length) {
    throw new AirgapError(
      'E_INPUT',
      `${source} do not fit what the stages need:\n${problems.map((p) => `  ${p}`).join('\n')}`,
      {
        hints: [
          'Fix the values file given with --values; docs/stages.md describes site values.',
          'Run the install with --dry-run to check the values without touching the cluster.',
        ],
        data: { problems },
      },
    )
  }
  return values
}

/** Reads a site values file (YAML or JSON); an empty file is no values. */
export async function readSiteValuesFile(file: string): Promise<Record<string, unknown>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new AirgapError('E_INPUT', `Cannot read the site values file ${file}: ${(error as Error).message}`)
  }
  return parseSiteValues(text, file)
}

const yamlSchema = CORE_SCHEMA.withTags(mergeTag)

export function parseSiteValues(text: string, source: string): Record<string, unknown> {
  let parsed: unknown
  try {
    const docs = loadAll(text, { schema: yamlSchema, filename: source, json: true })
    if (docs.length > 1) throw new Error(`expected one document, found ${docs.length}`)
    parsed = docs[0] ?? {}
  } catch (error) {
    throw new AirgapError(
      'E_INPUT',
      `The site values file ${source} is not valid YAML: ${(error as Error).message}`,
    )
  }
  if (!isPlainObject(parsed))
    throw new AirgapError('E_INPUT', `The site values file ${source}: expected a mapping at the top.`, {
      hints: ['Write values as nested keys, e.g. "nfs:\\n  server: 10.0.0.5".'],
    })
  return parsed
}

// --- substitution -----------------------------------------------------------------------------------------------

/** `${{ site.a.b[0] }}`; `$${{` writes a literal `${{`. */
const EXPRESSION = /(\$?)\$\{\{([^}]*)\}\}/g
const REFERENCE = /^site((?:\.[A-Za-z0-9_-]+|\[\d+\])+)$/

/**
 * Replaces `${{ site.<path> }}` in every string of `document` (keys are left alone). A string that is exactly one
 * reference becomes the value itself, with its type (a number stays a number, a mapping stays a mapping); a
 * reference inside longer text is inserted as text, and must then be a string, number or boolean. Problems are
 * collected into `problems` as `<where> <field path>: <what>`, and the document is returned with what could be
 * substituted.
 */
export function substituteSiteValues<T>(
  document: T,
  values: Record<string, unknown>,
  where: string,
  problems: string[],
): T {
  const walk = (node: unknown, path: string): unknown => {
    if (typeof node === 'string')
      return substituteString(node, values, `${where}${path ? ` ${path}` : ''}`, problems)
    if (Array.isArray(node)) return node.map((item, i) => walk(item, `${path}[${i}]`))
    if (isPlainObject(node)) {
      const out: Record<string, unknown> = {}
      for (const [key, value] of Object.entries(node)) out[key] = walk(value, join(path, key))
      return out
    }
    return node
  }
  return walk(document, '') as T
}

/** True when `value` is text that is exactly one `${{ site.<path> }}` reference (it is replaced by the typed value). */
export function isSiteReference(value: unknown): value is string {
  if (typeof value !== 'string') return false
  const match = /^\$\{\{([^}]*)\}\}$/.exec(value)
  return match !== null && REFERENCE.test(match[1]!.trim())
}

/** True when the text refers to a site value (used to skip substitution work, and in tests). */
export function hasSiteReference(text: string): boolean {
  for (const match of text.matchAll(EXPRESSION)) if (match[1] !== '$') return true
  return false
}

function substituteString(
  text: string,
  values: Record<string, unknown>,
  where: string,
  problems: string[],
): unknown {
  if (!text.includes('${{')) return text
  const matches = [...text.matchAll(EXPRESSION)]
  const only = matches[0]
  if (matches.length === 1 && only && only[1] === '' && only[0] === text) {
    const value = lookup(only[2]!, values, where, problems)
    return value === undefined ? text : structuredClone(value)
  }
  return text.replace(EXPRESSION, (whole, escaped: string, inner: string) => {
    if (escaped === '$') return whole.slice(1)
    const value = lookup(inner, values, where, problems)
    if (value === undefined) return whole
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      return String(value)
    problems.push(
      `${where}: \${{${inner}}} is ${describe(value)}; inside longer text only a string, number or boolean can be inserted`,
    )
    return whole
  })
}

function lookup(
  inner: string,
  values: Record<string, unknown>,
  where: string,
  problems: string[],
): unknown | undefined {
  const expression = inner.trim()
  const match = REFERENCE.exec(expression)
  if (!match) {
    problems.push(
      `${where}: \${{${inner}}} is not a site value reference; write \${{ site.<name>.<name> }} (nothing else is evaluated)`,
    )
    return undefined
  }
  let current: unknown = values
  for (const part of match[1]!.matchAll(/\.([A-Za-z0-9_-]+)|\[(\d+)\]/g)) {
    if (part[1] !== undefined) current = isPlainObject(current) ? current[part[1]] : undefined
    else current = Array.isArray(current) ? current[Number(part[2])] : undefined
    if (current === undefined) break
  }
  if (current === undefined || current === null) {
    problems.push(
      expression.startsWith('site.airgap.')
        ? `${where}: ${expression} is not set; the installer fills it in from the site server it starts (with --no-serve, give the running server's --site-url and --state-dir)`
        : `${where}: ${expression} is not set; add it to the site values file`,
    )
    return undefined
  }
  return current
}

// --- helpers ----------------------------------------------------------------------------------------------------

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key
}

function hasType(value: unknown, type: ValueType): boolean {
  switch (type) {
    case 'object':
      return isPlainObject(value)
    case 'array':
      return Array.isArray(value)
    case 'string':
      return typeof value === 'string'
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value)
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'boolean':
      return typeof value === 'boolean'
  }
}

function typeWord(type: ValueType): string {
  return {
    object: 'a mapping',
    array: 'a list',
    string: 'text',
    integer: 'a whole number',
    number: 'a number',
    boolean: 'true or false',
  }[type]
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (isPlainObject(value)) return 'a mapping'
  if (typeof value === 'string')
    return `text ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`
  return `${typeof value} ${JSON.stringify(value)}`
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}
