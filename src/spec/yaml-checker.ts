/**
 * A checker of YAML documents that reports every problem as file:line:col. It parses with positions (syntax errors and
 * dangling aliases become problems with a caret under the spot), walks mappings and lists by rule tables (a Rule per
 * field: required or not, what a valid value looks like), reads typed values, and records each problem as
 * {line, column, path, message} with the message `<what is wrong>; expected <what>`. Generic: the bundle definition
 * (bundle-checker.ts) extends YamlChecker with its sections; other loaders (stage.yaml) locate their problems by
 * field path with locateYamlPath.
 */
import {
  type Document,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
} from 'yaml'
import { AirgapError } from '../errors.js'
import { closestMatch } from './closest-match.js'
import { q } from './value-checks.js'

/** One problem found in a document; line and column are 1-based, path is like `images[3].ref` ('' = document). */
export interface YamlProblem {
  line: number
  column: number
  path: string
  /** `<what is wrong>; expected <what>` */
  message: string
}

export interface YamlPosition {
  line: number
  column: number
}

/** A value in the document: a mapping field (key set) or a list item (key undefined). */
export interface Field {
  path: string
  key: unknown
  value: unknown
  parent: unknown
  /** What a valid value looks like, for messages. */
  expected: string
}

/** What a mapping's field may hold. */
export interface Rule {
  required?: boolean
  expected: string
}

/** A parsed document with the line counter its positions are read with. */
export interface ParsedYaml {
  doc: Document
  lines: LineCounter
}

export const joinPath = (base: string, name: string): string => (base === '' ? name : `${base}.${name}`)

export const isEmpty = (node: unknown): boolean =>
  node === null || node === undefined || (isScalar(node) && node.value === null)

export function formatProblem(display: string, problem: YamlProblem): string {
  const where = `${display}:${problem.line}:${problem.column}`
  return problem.path === ''
    ? `${where}: ${problem.message}`
    : `${where}: ${problem.path}: ${problem.message}`
}

export function sortProblems(problems: YamlProblem[]): YamlProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column)
}

/** Parses one YAML document keeping positions; syntax errors are left in doc.errors (see checkYamlSyntax). */
export function parseYaml(text: string): ParsedYaml {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false })
  return { doc, lines }
}

/** The position of the first of `nodes` that has one (1:1 when none has). */
export function positionOf(lines: LineCounter, nodes: unknown[]): YamlPosition {
  for (const node of nodes) {
    if (isNode(node) && node.range) {
      const { line, col } = lines.linePos(node.range[0])
      return { line, column: col }
    }
  }
  return { line: 1, column: 1 }
}

/**
 * Where a field path such as `charts[1].valuesFiles[0]` is in the document: its value (its key when the value is
 * empty or `atKey` is set). A field that is not there is located at the nearest mapping or list that is, which is
 * where it is missing from.
 */
export function locateYamlPath(
  { doc, lines }: ParsedYaml,
  fieldPath: string,
  { atKey = false }: { atKey?: boolean } = {},
): YamlPosition {
  const deref = (node: unknown): unknown => (isAlias(node) ? (node.resolve(doc) ?? null) : node)
  let node = deref(doc.contents)
  let key: unknown
  let parent: unknown
  let found = true
  for (const match of fieldPath.matchAll(/\[(\d+)\]|([^.[\]]+)/g)) {
    let next: { key: unknown; value: unknown } | undefined
    if (match[1] !== undefined && isSeq(node)) {
      const index = Number(match[1])
      if (index < node.items.length) next = { key: undefined, value: node.items[index] }
    } else if (match[2] !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === match[2])
      if (pair !== undefined) next = { key: pair.key, value: pair.value }
    }
    if (next === undefined) {
      found = false
      break
    }
    parent = node
    key = next.key
    node = deref(next.value)
  }
  if (!found) return positionOf(lines, [node, key, parent])
  return positionOf(lines, atKey || isEmpty(node) ? [key, node, parent] : [node, key, parent])
}

/** What the syntax errors of a document are, and how to fix them. */
export interface SyntaxCheck {
  /** Says what the document is, for the hint on a second document: "A bundle definition". */
  subject: string
  /** The hint naming the format's documentation. */
  docsHint: string
}

const SYNTAX_ERRORS_SHOWN = 5

/**
 * Throws one E_INPUT error listing the syntax errors (and aliases to no anchor) of a parsed document, each as
 * file:line:col with the line and a caret under the spot; returns when there are none.
 */
export function checkYamlSyntax(
  { doc, lines }: ParsedYaml,
  text: string,
  display: string,
  source: string,
  { subject, docsHint }: SyntaxCheck,
): void {
  const syntaxHints: Record<string, string> = {
    MULTIPLE_DOCS: `${subject} is a single YAML document: remove the "---" separator and what follows.`,
    DUPLICATE_KEY: 'Each field may appear once in a mapping: remove or merge the repeated one.',
    TAB_AS_INDENT: 'YAML indents with spaces, not tabs.',
    BAD_INDENT:
      'Check the indentation: the items of one mapping or list start in the same column, with spaces.',
    MISSING_CHAR: 'Check for an unclosed quote or bracket.',
  }
  const problems: YamlProblem[] = []
  const hints = new Set<string>()
  for (const error of doc.errors) {
    const { line, col } = lines.linePos(error.pos[0])
    problems.push({ line, column: col, path: '', message: `YAML syntax error: ${error.message}` })
    const hint = syntaxHints[error.code]
    if (hint !== undefined) hints.add(hint)
  }
  if (problems.length === 0) {
    visit(doc, {
      Alias(_, alias) {
        if (alias.resolve(doc) !== undefined || !alias.range) return
        const { line, col } = lines.linePos(alias.range[0])
        problems.push({
          line,
          column: col,
          path: '',
          message: `YAML syntax error: the alias *${alias.source} refers to no anchor; expected an anchor &${alias.source} earlier in the file`,
        })
      },
    })
  }
  if (problems.length === 0) return
  sortProblems(problems)
  // One mistake often confuses the parser for the rest of the file: show the first few (data.problems has all).
  const sourceLines = text.split(/\r?\n/)
  const body = problems.slice(0, SYNTAX_ERRORS_SHOWN).flatMap((problem) => {
    const sourceLine = (sourceLines[problem.line - 1] ?? '').replaceAll('\t', ' ')
    return [formatProblem(display, problem), `    ${sourceLine}`, `    ${' '.repeat(problem.column - 1)}^`]
  })
  const more = problems.length - SYNTAX_ERRORS_SHOWN
  if (more > 0) body.push(`… and ${more} more (often caused by the first)`)
  throw new AirgapError('E_INPUT', [`${display} is not valid YAML:`, ...body].join('\n'), {
    hints: [...hints, docsHint],
    data: { file: display, source, problems },
  })
}

/**
 * Walks a parsed document and collects its problems. A subclass reads its format's sections with the value readers
 * below; each reader reports what is wrong and returns undefined, or returns the value.
 */
export class YamlChecker {
  readonly problems: YamlProblem[] = []
  readonly hints: string[] = []

  constructor(
    protected readonly doc: Document,
    protected readonly lines: LineCounter,
    /** The file as named in messages. */
    protected readonly display: string,
    /** What the whole document is called in messages: "the definition". */
    protected readonly documentName = 'the document',
  ) {}

  // --- value readers: each reports what is wrong and returns undefined, or returns the value

  protected required<T>(field: Field | undefined, read: (f: Field) => T | undefined): T | undefined {
    // A missing required field was reported by mapping(); an empty one is reported by read().
    return field === undefined ? undefined : read(field)
  }

  /** An optional field: absent or empty (`key:` with no value) means "use the default". */
  protected optional<T>(field: Field | undefined, read: (f: Field) => T | undefined): T | undefined {
    return field === undefined || isEmpty(field.value) ? undefined : read(field)
  }

  /**
   * A mapping whose fields are read by `rules`: unknown fields (with a suggestion) and missing required ones are
   * reported. `elsewhere` names fields that belong in another mapping (name → where), for the suggestion.
   */
  protected mapping(
    f: Field,
    rules: Record<string, Rule>,
    elsewhere: Record<string, string> = {},
  ): Record<string, Field> | undefined {
    const node = f.value
    if (!isMap(node)) {
      this.wrongType(f, f.expected)
      return undefined
    }
    const known = Object.keys(rules)
    const fields: Record<string, Field> = {}
    for (const pair of node.items) {
      const name = isScalar(pair.key) ? String(pair.key.value) : undefined
      if (name === undefined || !Object.hasOwn(rules, name)) {
        this.unknownField(pair.key, f, name, known, elsewhere)
        continue
      }
      fields[name] = {
        path: joinPath(f.path, name),
        key: pair.key,
        value: this.deref(pair.value),
        parent: node,
        expected: rules[name]?.expected ?? '',
      }
    }
    for (const [name, rule] of Object.entries(rules)) {
      if (rule.required && fields[name] === undefined) {
        this.report([node, f.key], joinPath(f.path, name), 'is missing', rule.expected)
      }
    }
    return fields
  }

  protected unknownField(
    key: unknown,
    parent: Field,
    name: string | undefined,
    known: string[],
    elsewhere: Record<string, string>,
  ): void {
    const expected = `one of ${known.join(', ')}`
    if (name === undefined) {
      this.report([key, parent.value], parent.path, 'has a field whose name is not a plain text', expected)
      return
    }
    const fieldPath = joinPath(parent.path, name)
    const moved = Object.hasOwn(elsewhere, name) ? elsewhere[name] : undefined
    const suggestion = moved ?? closestMatch(name, known)
    if (suggestion === undefined) {
      this.report([key, parent.value], fieldPath, `unknown field ${q(name)}`, expected)
      this.addHint(
        'Remove unknown fields, or check their indentation: a field may belong to another mapping.',
      )
      return
    }
    this.report(
      [key, parent.value],
      fieldPath,
      `unknown field ${q(name)} (did you mean ${q(suggestion)}?)`,
      expected,
    )
    this.addHint(`Unknown field ${q(name)} — did you mean ${q(suggestion)}?`)
  }

  /** A list whose items each look like `itemExpected`. */
  protected list(f: Field, itemExpected: string): Field[] | undefined {
    const node = f.value
    if (!isSeq(node)) {
      this.wrongType(f, f.expected)
      return undefined
    }
    return node.items.map((item, index) => ({
      path: `${f.path}[${index}]`,
      key: undefined,
      value: this.deref(item),
      parent: node,
      expected: itemExpected,
    }))
  }

  /** A non-empty string, checked by `check`; `allowEmpty` accepts "". */
  protected text(
    f: Field,
    check: ((value: string) => string | undefined) | undefined,
    { allowEmpty = false, expected = f.expected }: { allowEmpty?: boolean; expected?: string } = {},
  ): string | undefined {
    const node = f.value
    if (!isScalar(node) || typeof node.value !== 'string') {
      this.wrongType(f, expected, true)
      return undefined
    }
    const value = node.value
    if (value.length === 0 && !allowEmpty) {
      this.report(this.at(f), f.path, 'is empty', expected)
      return undefined
    }
    const problem = check?.(value)
    if (problem !== undefined) {
      this.report(this.at(f), f.path, problem, expected)
      return undefined
    }
    return value
  }

  protected exact(f: Field, wanted: string): string | undefined {
    const value = this.text(f, (v) => (v === wanted ? undefined : `${q(v)} is not supported`))
    return value === wanted ? value : undefined
  }

  protected boolean(f: Field): boolean | undefined {
    if (isScalar(f.value) && typeof f.value.value === 'boolean') return f.value.value
    this.wrongType(f, f.expected)
    return undefined
  }

  protected size(f: Field): number | undefined {
    const node = f.value
    if (isScalar(node) && typeof node.value === 'number') {
      if (Number.isSafeInteger(node.value) && node.value >= 0) return node.value
      this.report(
        this.at(f),
        f.path,
        `${node.source ?? node.value} is not a whole number of 0 or more`,
        'a size in bytes',
      )
      return undefined
    }
    this.wrongType(f, f.expected)
    return undefined
  }

  protected values(f: Field): Record<string, unknown> | undefined {
    if (!isMap(f.value)) {
      this.wrongType(f, f.expected)
      return undefined
    }
    return this.toJS(f.value) as Record<string, unknown>
  }

  /** Reports a value of the wrong type ("is a list", "is the number 1.1", …); `wantsText` adds a hint to quote. */
  protected wrongType(f: Field, expected: string, wantsText = false): void {
    const node = f.value
    let wrong = 'has the wrong type'
    if (isEmpty(node)) wrong = 'is empty'
    else if (isMap(node)) wrong = 'is a mapping'
    else if (isSeq(node)) wrong = f.path === '' ? `${this.documentName} is a list` : 'is a list'
    else if (isScalar(node)) {
      const source = node.source ?? String(node.value)
      if (typeof node.value === 'string') wrong = `is the text ${q(node.value)}`
      else if (typeof node.value === 'number' || typeof node.value === 'boolean') {
        const type = typeof node.value === 'number' ? 'number' : 'boolean'
        const read = String(node.value) === source ? '' : ` (YAML reads it as ${String(node.value)})`
        wrong = `is the ${type} ${source}${read}`
        if (wantsText) {
          wrong += ', not text'
          this.addHint(`Quote ${f.path} as ${q(source)} so that YAML reads it as text, not as a ${type}.`)
        }
      } else wrong = `is ${source}`
    }
    this.report(this.at(f), f.path, wrong, expected)
  }

  // --- duplicates

  /** Records `key` at `f`; when seen before, reports it naming both positions and returns true. */
  protected duplicate(
    seen: Map<string, string>,
    key: string,
    f: Field,
    what: string,
    expected: string,
  ): boolean {
    const first = seen.get(key)
    if (first === undefined) {
      seen.set(key, this.where(f))
      return false
    }
    this.report(this.at(f), f.path, `${what} (here and at ${first})`, expected)
    return true
  }

  // --- positions and reports

  protected deref(node: unknown): unknown {
    // Unresolvable aliases were rejected as syntax errors.
    return isAlias(node) ? (node.resolve(this.doc) ?? null) : node
  }

  protected toJS(node: unknown): unknown {
    return isNode(node) ? node.toJS(this.doc) : node
  }

  /** Where to point for a field: its value, or its key when the value is empty. */
  protected at(f: Field): unknown[] {
    return isEmpty(f.value) ? [f.key, f.value, f.parent] : [f.value, f.key, f.parent]
  }

  protected position(nodes: unknown[]): YamlPosition {
    return positionOf(this.lines, nodes)
  }

  protected where(f: Field): string {
    const { line, column } = this.position(this.at(f))
    return `${this.display}:${line}:${column}`
  }

  protected report(at: unknown[], fieldPath: string, wrong: string, expected: string): void {
    this.problems.push({ ...this.position(at), path: fieldPath, message: `${wrong}; expected ${expected}` })
  }

  protected addHint(hint: string): void {
    if (!this.hints.includes(hint)) this.hints.push(hint)
  }
}
