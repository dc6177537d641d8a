/**
 * Renders docs/events.md from the event catalogues: the log codes (src/events/codes.ts) and the task kinds
 * (src/events/task-kinds.ts). Levels and descriptions come from the catalogues themselves; the data types are read as
 * text from the `LogData` and `TaskData` interfaces with the TypeScript parser, so the page shows the types the
 * compiler checks. Used by scripts/gen-events-doc.ts and by the unit test that checks the page is current.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { LOG_CODES } from '../src/events/codes.js'
import { TASK_KINDS } from '../src/events/task-kinds.js'

const root = fileURLToPath(new URL('..', import.meta.url))

/** The text of each member's type in interface `name` of a source file, by member name (`name?` when optional). */
function memberTypes(file: string, name: string): Map<string, string> {
  const path = `${root}${file}`
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.ES2022, true)
  const types = new Map<string, string>()
  const visit = (node: ts.Node): void => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === name) {
      for (const member of node.members) {
        if (!ts.isPropertySignature(member) || !member.type) continue
        const key =
          (ts.isStringLiteral(member.name) ? member.name.text : member.name.getText(source)) +
          (member.questionToken ? '?' : '')
        types.set(key, oneLine(member.type, source))
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return types
}

/** A type on one line: the members of an object type written one per line get their `;` back. */
function oneLine(type: ts.TypeNode, source: ts.SourceFile): string {
  if (ts.isTypeLiteralNode(type)) {
    const members = type.members.map((m) => {
      if (ts.isPropertySignature(m) && m.type) {
        const name = m.name.getText(source) + (m.questionToken ? '?' : '')
        return `${name}: ${oneLine(m.type, source)}`
      }
      return m
        .getText(source)
        .replace(/[;,]\s*$/, '')
        .replace(/\s+/g, ' ')
    })
    return members.length ? `{ ${members.join('; ')} }` : '{}'
  }
  return type.getText(source).replace(/\s+/g, ' ')
}

/** A table cell: pipes escaped, and the type in code font unless there is none. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|')
}

function dataCell(type: string | undefined): string {
  return type === undefined || type === 'undefined' ? '—' : `\`${cell(type)}\``
}

export function renderEventsDoc(): string {
  const logData = memberTypes('src/events/codes.ts', 'LogData')
  const taskData = memberTypes('src/events/task-kinds.ts', 'TaskData')
  const objectRef = [...memberTypes('src/events/codes.ts', 'ObjectRefData')]
    .map(([name, type]) => `${name}: ${type}`)
    .join('; ')
  const lines = [
    '<!-- Generated from src/events/codes.ts and src/events/task-kinds.ts by scripts/gen-events-doc.ts: do not edit. -->',
    '',
    '# Progress events',
    '',
    'The core reports what it does as progress events; a command shows them in the terminal, as plain lines, or as',
    'NDJSON with `--json` (one event per line, each with its `time`). The event types are `task.start`,',
    '`task.progress`, `task.end` and `log` (src/events/types.ts). Match on the `code` of a log event and the `kind` of',
    'a task, not on their wording: messages and titles are for people and may change; codes, kinds and the shape of',
    'their `data` are stable.',
    '',
    '## Log codes',
    '',
    'A `log` event has a `level`, a `message`, and a `code` from this table; its `data`, when present, has the type',
    'the table gives.',
    '',
    '| Code | Level | Description | Data |',
    '| --- | --- | --- | --- |',
    ...Object.entries(LOG_CODES).map(
      ([code, entry]) =>
        `| \`${code}\` | ${entry.level} | ${cell(entry.description)} | ${dataCell(logData.get(code))} |`,
    ),
    '',
    '## Task kinds',
    '',
    'A `task.start` event has an `id`, a `title`, its `parent` for a subtask, a `kind` from this table, and `data` of',
    "the type the table gives (when the kind has data). The task's `task.progress` and `task.end` events carry its",
    '`id`.',
    '',
    '| Kind | Description | Data |',
    '| --- | --- | --- |',
    ...Object.entries(TASK_KINDS).map(
      ([kind, description]) => `| \`${kind}\` | ${cell(description)} | ${dataCell(taskData.get(kind))} |`,
    ),
    '',
    `\`ObjectRefData\` is a Kubernetes object: \`{ ${objectRef} }\` (\`namespace\` is absent for cluster-scoped`,
    'objects).',
    '',
  ]
  return lines.join('\n')
}
