/**
 * A small, safe subset of Kubernetes JSONPath (the `kubectl get -o jsonpath` / `kubectl wait --for=jsonpath` syntax),
 * for custom readiness rules. Nothing is evaluated as code:
 *
 *   {.status.phase}                                   a field
 *   {.a.b[0].c}  {.items[-1]}                         array index (negative counts from the end)
 *   {.metadata.annotations['example.com/ready']}      a quoted name (for keys with dots or slashes)
 *   {.status.conditions[*].type}  {.spec.*}           every element / every value
 *   {.status.conditions[?(@.type=="Ready")].status}   filter: @.path == or != a "string", 'string', number,
 *                                                     true, false or null; or just @.path (exists and not false)
 *
 * The braces and a leading `$` are optional. `evaluateJsonPath` returns every value the path reaches, in order.
 */
export type Segment =
  | { type: 'field'; name: string }
  | { type: 'index'; index: number }
  | { type: 'wildcard' }
  | { type: 'filter'; path: Segment[]; op?: '==' | '!='; value?: unknown }

export class JsonPathError extends Error {
  constructor(
    readonly expression: string,
    readonly position: number,
    reason: string,
  ) {
    super(`invalid JSONPath ${JSON.stringify(expression)} at character ${position + 1}: ${reason}`)
    this.name = 'JsonPathError'
  }
}

const NAME = /[A-Za-z0-9_$-]/

/** Parses an expression once; throws JsonPathError naming the position of the problem. */
export function parseJsonPath(expression: string): Segment[] {
  let text = expression.trim()
  let offset = expression.indexOf(text)
  if (text.startsWith('{')) {
    if (!text.endsWith('}')) throw new JsonPathError(expression, expression.length - 1, 'missing "}"')
    text = text.slice(1, -1)
    offset += 1
  }
  const parser = new Parser(expression, text, offset)
  const segments = parser.path(true)
  if (!parser.done()) parser.fail('unexpected character')
  if (segments.length === 0) parser.fail('an empty path')
  return segments
}

class Parser {
  private i = 0

  constructor(
    private readonly expression: string,
    private readonly text: string,
    private readonly offset: number,
  ) {}

  done(): boolean {
    return this.i >= this.text.length
  }

  fail(reason: string): never {
    throw new JsonPathError(this.expression, this.offset + this.i, reason)
  }

  private peek(): string | undefined {
    return this.text[this.i]
  }

  private skipSpaces(): void {
    while (this.peek() === ' ') this.i++
  }

  /** A sequence of .name, .*, [..] segments; `top` allows a leading `$`, inside filters a leading `@` is required. */
  path(top: boolean): Segment[] {
    const segments: Segment[] = []
    if (top && this.peek() === '$') this.i++
    for (;;) {
      const c = this.peek()
      if (c === '.') {
        this.i++
        if (this.peek() === '*') {
          this.i++
          segments.push({ type: 'wildcard' })
          continue
        }
        const start = this.i
        while (this.i < this.text.length && NAME.test(this.text[this.i]!)) this.i++
        if (this.i === start) this.fail('expected a field name after "."')
        segments.push({ type: 'field', name: this.text.slice(start, this.i) })
      } else if (c === '[') {
        this.i++
        segments.push(this.bracket())
      } else {
        return segments
      }
    }
  }

  private bracket(): Segment {
    this.skipSpaces()
    const c = this.peek()
    let segment: Segment
    if (c === '*') {
      this.i++
      segment = { type: 'wildcard' }
    } else if (c === "'" || c === '"') {
      segment = { type: 'field', name: this.quoted() }
    } else if (c === '?') {
      this.i++
      segment = this.filter()
    } else {
      const match = /^-?\d+/.exec(this.text.slice(this.i))
      if (!match) this.fail('expected an index, *, a quoted name or ?(...) inside [...]')
      this.i += match[0].length
      segment = { type: 'index', index: Number(match[0]) }
    }
    this.skipSpaces()
    if (this.peek() !== ']') this.fail('expected "]"')
    this.i++
    return segment
  }

  private quoted(): string {
    const quote = this.peek()!
    this.i++
    let out = ''
    while (!this.done() && this.peek() !== quote) {
      if (this.peek() === '\\') {
        this.i++
        if (this.done()) break
      }
      out += this.text[this.i]
      this.i++
    }
    if (this.done()) this.fail('unterminated quoted text')
    this.i++
    return out
  }

  private filter(): Segment {
    if (this.peek() !== '(') this.fail('expected "(" after "?"')
    this.i++
    this.skipSpaces()
    if (this.peek() !== '@') this.fail('a filter starts with @')
    this.i++
    const path = this.path(false)
    this.skipSpaces()
    let segment: Segment = { type: 'filter', path }
    const op = this.text.slice(this.i, this.i + 2)
    if (op === '==' || op === '!=') {
      this.i += 2
      this.skipSpaces()
      segment = { type: 'filter', path, op, value: this.literal() }
      this.skipSpaces()
    }
    if (this.peek() !== ')') this.fail('expected ")" (filters compare with == or != only)')
    this.i++
    return segment
  }

  private literal(): unknown {
    const c = this.peek()
    if (c === '"' || c === "'") return this.quoted()
    const match = /^(-?\d+(?:\.\d+)?|true|false|null)/.exec(this.text.slice(this.i))
    if (!match) this.fail('expected a quoted text, a number, true, false or null')
    this.i += match[0].length
    return JSON.parse(match[0])
  }
}

/** Every value `segments` reach from `root`, in document order. */
export function evaluateJsonPath(segments: Segment[], root: unknown): unknown[] {
  let current: unknown[] = [root]
  for (const segment of segments) {
    const next: unknown[] = []
    for (const value of current) step(segment, value, next)
    current = next
  }
  return current
}

function step(segment: Segment, value: unknown, out: unknown[]): void {
  switch (segment.type) {
    case 'field':
      if (isRecord(value) && Object.hasOwn(value, segment.name) && value[segment.name] !== undefined)
        out.push(value[segment.name])
      return
    case 'index':
      if (Array.isArray(value)) {
        const at = segment.index < 0 ? value.length + segment.index : segment.index
        if (at >= 0 && at < value.length) out.push(value[at])
      }
      return
    case 'wildcard':
      if (Array.isArray(value)) out.push(...value)
      else if (isRecord(value)) out.push(...Object.values(value))
      return
    case 'filter': {
      const items = Array.isArray(value) ? value : isRecord(value) ? Object.values(value) : []
      for (const item of items) if (matches(segment, item)) out.push(item)
      return
    }
  }
}

function matches(filter: Extract<Segment, { type: 'filter' }>, item: unknown): boolean {
  const found = evaluateJsonPath(filter.path, item)
  if (filter.op === undefined) return found.some((v) => v !== null && v !== false)
  const equal = found.some((v) => looselyEqual(v, filter.value))
  return filter.op === '==' ? equal : !equal
}

/** Compares a found value with a literal the way kubectl users expect: "1" equals 1, "True" equals "True". */
function looselyEqual(found: unknown, literal: unknown): boolean {
  if (found === literal) return true
  if (found === null || literal === null || isRecord(found) || Array.isArray(found)) return false
  return String(found) === String(literal)
}

/** A value found by a path, as text: strings as they are, everything else as JSON. */
export function formatJsonPathValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** Parses and evaluates in one go (for rules evaluated once; readiness rules are parsed when loaded). */
export function jsonPath(expression: string, root: unknown): unknown[] {
  return evaluateJsonPath(parseJsonPath(expression), root)
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
