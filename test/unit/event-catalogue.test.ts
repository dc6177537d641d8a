/**
 * The event catalogue stays honest: every log code and task kind the source emits is declared in it, every declared
 * one is emitted somewhere, and docs/events.md is what scripts/gen-events-doc.ts writes from it.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { renderEventsDoc } from '../../scripts/events-doc.js'
import { LOG_CODES } from '../../src/events/codes.js'
import { TASK_KINDS } from '../../src/events/task-kinds.js'

const ROOT = new URL('../..', import.meta.url).pathname

function sources(dir: string): { path: string; text: string }[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ path: join(dir, f), text: readFileSync(join(ROOT, dir, f), 'utf8') }))
}

/**
 * Every code literal the source emits in a log event: the `code:` line of each `type: 'log'` object (a ternary may
 * give two), the codes handed to logEvent(), and the upload notices uploadBlob reports through onNotice.
 */
function emittedCodes(files: { path: string; text: string }[]): Map<string, string[]> {
  const found = new Map<string, string[]>()
  const add = (code: string, where: string) => found.set(code, [...(found.get(code) ?? []), where])
  for (const { path, text } of files) {
    for (const match of text.matchAll(/type: 'log',([\s\S]*?)\n\s*\}\)/g)) {
      const codeLine = /\bcode: ([^\n]*)/.exec(match[1]!)
      const literals = [...(codeLine?.[1] ?? '').matchAll(/'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!)
      // A log event without a literal code would escape this check (and the catalogue).
      expect(literals, `${path}: a log event without a literal code: ${match[0]}`).not.toEqual([])
      for (const code of literals) add(code, path)
    }
    for (const match of text.matchAll(/logEvent\(\s*'([A-Z][A-Z0-9_]*)'/g)) add(match[1]!, path)
    for (const match of text.matchAll(/onNotice\?\.\(\{\s*code: '([A-Z][A-Z0-9_]*)'/g)) add(match[1]!, path)
  }
  return found
}

/** Every task kind the source starts: the first argument of `.child(` and the second of `new Task(`. */
function startedKinds(files: { path: string; text: string }[]): Set<string> {
  const kinds = new Set<string>()
  for (const { text } of files) {
    for (const m of text.matchAll(/\.child\(\s*'([a-z][a-z.-]*)'/g)) kinds.add(m[1]!)
    for (const m of text.matchAll(/new Task\(\s*[\w.]+,\s*'([a-z][a-z.-]*)'/g)) kinds.add(m[1]!)
  }
  return kinds
}

describe('event catalogue', () => {
  const src = sources('src')

  it('declares every log code the source emits, and each declared code is emitted', () => {
    const emitted = emittedCodes(src)
    const declared = Object.keys(LOG_CODES)
    const undeclared = [...emitted].filter(([code]) => !declared.includes(code))
    expect(undeclared, 'emitted but not in src/events/codes.ts').toEqual([])
    expect(
      declared.filter((code) => !emitted.has(code)),
      'in src/events/codes.ts but emitted nowhere',
    ).toEqual([])
  })

  it('finds an undeclared code, so the check above can fail', () => {
    const emitted = emittedCodes([
      {
        path: 'example.ts',
        text: "sink.emit({\n  type: 'log',\n  level: 'warn',\n  code: 'W_NOT_IN_THE_CATALOGUE',\n  message: 'x',\n})\n",
      },
    ])
    expect([...emitted.keys()]).toEqual(['W_NOT_IN_THE_CATALOGUE'])
    expect(Object.keys(LOG_CODES)).not.toContain('W_NOT_IN_THE_CATALOGUE')
  })

  it('starts a task of every declared kind somewhere, and of no undeclared one', () => {
    const started = startedKinds(src)
    const declared = Object.keys(TASK_KINDS)
    expect([...started].filter((kind) => !declared.includes(kind))).toEqual([])
    expect(declared.filter((kind) => !started.has(kind))).toEqual([])
  })

  it('docs/events.md is current (npx tsx scripts/gen-events-doc.ts writes it)', () => {
    const written = readFileSync(join(ROOT, 'docs/events.md'), 'utf8')
    expect(
      written === renderEventsDoc(),
      'docs/events.md is out of date: run npx tsx scripts/gen-events-doc.ts',
    ).toBe(true)
  })

  it('lists every code and kind in docs/events.md with its data type', () => {
    const doc = renderEventsDoc()
    for (const code of Object.keys(LOG_CODES)) expect(doc).toContain(`| \`${code}\` |`)
    for (const kind of Object.keys(TASK_KINDS)) expect(doc).toContain(`| \`${kind}\` |`)
    expect(doc).toContain('| `W_STAGE_YAML` | warn | ')
    expect(doc).toContain('`{ stage: string; file: string }`')
    expect(doc).toContain('`{ ref: ObjectRefData; rule?: { jsonPath: string; equals?: string } }`')
  })
})
