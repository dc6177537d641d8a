/**
 * How problems of install stages are reported. Those of a stage.yaml are located by the same YAML checker as the bundle
 * definition's (spec/yaml-checker.ts), so each carries file:line:col; the error lists every problem, one a line.
 */
import { AirgapError } from '../errors.js'
import { closestMatch } from '../spec/closest-match.js'
import { locateYamlPath, type ParsedYaml, parseYaml, type YamlPosition } from '../spec/yaml-checker.js'
import type { StageProblem, StageProblemPosition, StageReport } from './stage-types.js'

/**
 * Reports problems of the stage.yaml `member` (text `text`) into `problems`, each at its position. The text is parsed
 * for positions on the first problem only: a valid stage file costs nothing more.
 */
export function stageFileReporter(
  member: string,
  text: string,
  problems: StageProblem[],
): { field: StageReport; document: (what: string, position?: YamlPosition) => void } {
  let parsed: ParsedYaml | undefined
  const locate = (field: string, atKey = false): YamlPosition => {
    parsed ??= parseYaml(text)
    return locateYamlPath(parsed, field, { atKey })
  }
  const at = (path: string, message: string, position: YamlPosition): StageProblemPosition => ({
    file: member,
    ...position,
    path,
    message,
  })
  return {
    field(field, what, { atKey = false } = {}) {
      const position = locate(field, atKey)
      problems.push({ text: `${member} ${field}: ${what}`, at: at(field, what, position) })
    },
    document(what, position = locate('')) {
      problems.push({ text: `${member}: ${what}`, at: at('', what, position) })
    },
  }
}

/** Reports the fields of `doc` that are not in `known`, suggesting the closest known one. */
export function unknownKeys(
  doc: Record<string, unknown>,
  known: string[],
  prefix: string,
  report: StageReport,
): void {
  for (const key of Object.keys(doc)) {
    if (known.includes(key)) continue
    const near = closestMatch(key, known)
    report(
      `${prefix}${key}`,
      `unknown field${near ? ` (did you mean "${near}"?)` : ''}; expected one of ${known.join(', ')}`,
      { atKey: true },
    )
  }
}

function formatStageProblem({ text, at }: StageProblem): string {
  if (at === undefined) return text
  const where = `${at.file}:${at.line}:${at.column}`
  return at.path === '' ? `${where}: ${at.message}` : `${where}: ${at.path}: ${at.message}`
}

/**
 * The error for the problems of a bundle's stages. data.problems lists them as one-line texts; data.located lists
 * those of stage.yaml files as {file, line, column, path, message}.
 */
export function stageProblems(problems: StageProblem[]): AirgapError {
  return new AirgapError(
    'E_INPUT',
    `The bundle's stages have ${problems.length === 1 ? 'a problem' : `${problems.length} problems`}:\n${problems
      .map((p) => `  ${formatStageProblem(p)}`)
      .join('\n')}`,
    {
      hints: [
        'Fix the stage folder named in the bundle definition and build the bundle again; docs/stages.md describes the format.',
      ],
      data: {
        problems: problems.map((p) => p.text),
        located: problems.flatMap((p) => (p.at === undefined ? [] : [p.at])),
      },
    },
  )
}
