/**
 * The generic line:col YAML checker (src/spec/yaml-checker.ts): locating field paths, syntax errors with a caret, and
 * the field walker on a small format of its own (not the bundle definition), to show it is reusable.
 */
import { describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import {
  checkYamlSyntax,
  locateYamlPath,
  parseYaml,
  type Rule,
  YamlChecker,
  type YamlProblem,
} from '../../src/spec/yaml-checker.js'

/** Lines joined into a document, so that a test reads line numbers off the array (index + 1). */
const doc = (...lines: string[]): string => `${lines.join('\n')}\n`

describe('locateYamlPath', () => {
  const parsed = parseYaml(
    doc(
      'name: demo', // 1
      'items:', // 2
      '  - {id: a, size: 1}', // 3
      '  - id: b', // 4
      '    empty:', // 5
      'base: &base {x: 1}', // 6
      'copy: *base', // 7
    ),
  )

  it('finds the value of a field, through mappings, lists and aliases', () => {
    expect(locateYamlPath(parsed, 'name')).toEqual({ line: 1, column: 7 })
    expect(locateYamlPath(parsed, 'items[0].size')).toEqual({ line: 3, column: 19 })
    expect(locateYamlPath(parsed, 'items[1].id')).toEqual({ line: 4, column: 9 })
    expect(locateYamlPath(parsed, 'copy.x')).toEqual({ line: 6, column: 17 })
  })

  it('points at the key when asked, or when the value is empty', () => {
    expect(locateYamlPath(parsed, 'name', { atKey: true })).toEqual({ line: 1, column: 1 })
    expect(locateYamlPath(parsed, 'items[1].empty')).toEqual({ line: 5, column: 5 })
  })

  it('points a missing field at the mapping or list it is missing from', () => {
    expect(locateYamlPath(parsed, 'items[1].size')).toEqual({ line: 4, column: 5 })
    expect(locateYamlPath(parsed, 'items[5].id')).toEqual({ line: 3, column: 3 })
    expect(locateYamlPath(parsed, '')).toEqual({ line: 1, column: 1 })
  })
})

describe('checkYamlSyntax', () => {
  it('passes a valid document and throws one E_INPUT error with a caret under each syntax error', () => {
    const check = { subject: 'A widget file', docsHint: 'See the widget docs.' }
    const good = 'a: 1\n'
    expect(() => checkYamlSyntax(parseYaml(good), good, 'w.yaml', '/abs/w.yaml', check)).not.toThrow()
    const bad = doc('a: 1', 'b: [1, 2', 'c: 3')
    let error: AirgapError | undefined
    try {
      checkYamlSyntax(parseYaml(bad), bad, 'w.yaml', '/abs/w.yaml', check)
    } catch (e) {
      error = e as AirgapError
    }
    expect(error).toBeInstanceOf(AirgapError)
    expect(error!.code).toBe('E_INPUT')
    const [first] = (error!.data?.problems ?? []) as YamlProblem[]
    expect(error!.message).toContain(`w.yaml:${first!.line}:${first!.column}: YAML syntax error`)
    expect(error!.message).toContain(`    ${' '.repeat(first!.column - 1)}^`)
    expect(error!.data).toMatchObject({ file: 'w.yaml', source: '/abs/w.yaml' })
    expect(error!.hints).toContain('See the widget docs.')
  })

  it('names the subject in the hint on a second document', () => {
    const text = 'a: 1\n---\nb: 2\n'
    expect(() =>
      checkYamlSyntax(parseYaml(text), text, 'w.yaml', '/abs/w.yaml', {
        subject: 'A widget file',
        docsHint: '',
      }),
    ).toThrow(
      expect.objectContaining({
        hints: expect.arrayContaining([expect.stringMatching(/^A widget file is a single YAML document/)]),
      }),
    )
  })
})

describe('YamlChecker', () => {
  /** A format of its own: {name (required text), size (a size), tags (a list of texts)}. */
  class WidgetChecker extends YamlChecker {
    static readonly RULES: Record<string, Rule> = {
      name: { required: true, expected: 'a widget name' },
      size: { expected: 'a size in bytes' },
      tags: { expected: 'a list of tags' },
    }

    check(): { name?: string; size?: number; tags?: string[] } | undefined {
      const root = {
        path: '',
        key: undefined,
        value: this.doc.contents,
        parent: undefined,
        expected: 'a widget',
      }
      const fields = this.mapping(root, WidgetChecker.RULES)
      if (fields === undefined) return undefined
      const name = this.required(fields.name, (f) => this.text(f, undefined))
      const size = this.optional(fields.size, (f) => this.size(f))
      const tags = this.optional(fields.tags, (f) =>
        this.list(f, 'a tag')?.map((item) => this.text(item, undefined) ?? ''),
      )
      return { name, size, tags }
    }
  }
  const check = (text: string) => {
    const { doc: parsed, lines } = parseYaml(text)
    const checker = new WidgetChecker(parsed, lines, 'w.yaml', 'the widget file')
    return { value: checker.check(), problems: checker.problems, hints: checker.hints }
  }

  it('reads a valid document', () => {
    expect(check(doc('name: w', 'size: 3', 'tags: [a, b]'))).toEqual({
      value: { name: 'w', size: 3, tags: ['a', 'b'] },
      problems: [],
      hints: [],
    })
  })

  it('reports each problem at its line:col with its path and what was expected', () => {
    const { problems, hints } = check(doc('nmae: w', 'size: -1', 'tags: [a, 7]'))
    expect(problems).toEqual([
      {
        line: 1,
        column: 1,
        path: 'nmae',
        message: 'unknown field "nmae" (did you mean "name"?); expected one of name, size, tags',
      },
      { line: 1, column: 1, path: 'name', message: 'is missing; expected a widget name' },
      {
        line: 2,
        column: 7,
        path: 'size',
        message: '-1 is not a whole number of 0 or more; expected a size in bytes',
      },
      { line: 3, column: 11, path: 'tags[1]', message: 'is the number 7, not text; expected a tag' },
    ])
    expect(hints).toContain('Quote tags[1] as "7" so that YAML reads it as text, not as a number.')
  })

  it('names the whole document as told when it has the wrong type', () => {
    expect(check('- a\n').problems).toEqual([
      { line: 1, column: 1, path: '', message: 'the widget file is a list; expected a widget' },
    ])
  })
})
