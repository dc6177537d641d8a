/**
 * Positions in a bundle definition for problems found after it was loaded (a git ref that does not exist, a chart
 * folder with no Chart.yaml): the field is located by its path in the definition file, and the error is given
 * `file:line:col: <field path>:` in front of its message, keeping its code, hints and data.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { AirgapError } from '../errors.js'
import { locateYamlPath, parseYaml, type YamlPosition } from './yaml-checker.js'

export interface DefinitionPosition extends YamlPosition {
  /** The definition as named in messages: relative to the current folder when it is under it. */
  file: string
  /** The field path, like `charts[2].git.ref`. */
  field: string
}

/** Where `fieldPath` is in the definition file `source` (absolute); 1:1 when the file cannot be read any more. */
export async function locateDefinitionField(source: string, fieldPath: string): Promise<DefinitionPosition> {
  const relative = path.relative(process.cwd(), source)
  const file = relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : source
  let position: YamlPosition = { line: 1, column: 1 }
  try {
    position = locateYamlPath(parseYaml(await readFile(source, 'utf8')), fieldPath)
  } catch {
    // The definition was read when loaded; if it is gone now, the field path alone still says where.
  }
  return { file, field: fieldPath, ...position }
}

/** The same error with the definition's file:line:col and field path in front of its message. */
export function atDefinitionField(error: AirgapError, where: DefinitionPosition): AirgapError {
  const prefix = `${where.file}:${where.line}:${where.column}: ${where.field}: `
  return new AirgapError(error.code, `${prefix}${error.message}`, {
    cause: error,
    hints: error.hints,
    data: {
      ...error.data,
      definition: { file: where.file, line: where.line, column: where.column, field: where.field },
    },
  })
}
