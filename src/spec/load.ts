/**
 * Loads a bundle definition (bundles/*.yaml) and validates it completely before anything else is done. Every problem
 * is collected (not just the first) and reported in one AirgapError('E_INPUT') whose message has one line per
 * problem, `file:line:col: <field path>: <what is wrong>; expected <what>`, and whose data.problems lists them as
 * {line, column, path, message}. The schema is documented in docs/bundle-definition.md.
 */
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { AirgapError } from '../errors.js'
import { BundleChecker } from './bundle-checker.js'
import type { LocalPathRef } from './chart-section-checker.js'
import type { BundleSpec } from './types.js'
import { checkYamlSyntax, formatProblem, parseYaml, sortProblems, type YamlProblem } from './yaml-checker.js'

/** One problem found in a definition; line and column are 1-based, path is like `images[3].ref` ('' = document). */
export type SpecProblem = YamlProblem

const DOCS_HINT = 'The bundle definition format is described in docs/bundle-definition.md.'

/**
 * Reads, parses and validates a bundle definition file. Besides the checks of parseBundleSpec, checks that every
 * stage path exists (relative to the definition's folder). Messages name the file as given in `file`.
 */
export async function loadBundleSpec(file: string): Promise<BundleSpec> {
  const absolute = path.resolve(file)
  let text: string
  try {
    text = await readFile(absolute, 'utf8')
  } catch (error) {
    throw readError(file, error)
  }
  const checked = checkBundleSpec(text, file)
  const folder = path.dirname(absolute)
  for (const local of checked.localPaths) {
    const resolved = path.resolve(folder, local.value)
    try {
      await stat(resolved)
    } catch {
      checked.problems.push({
        line: local.line,
        column: local.column,
        path: local.path,
        message:
          `${JSON.stringify(local.value)} does not exist (looked for ${resolved}); ` +
          `expected ${local.expected} relative to the definition's folder (${folder})`,
      })
    }
  }
  if (checked.problems.length > 0) throw invalidDefinition(file, checked)
  return checked.spec as BundleSpec
}

/**
 * Parses and validates a bundle definition from text (no file system access: stage paths and keyrings are not
 * checked for existence). `source` names the file in messages; the result's `source` is its absolute form.
 */
export function parseBundleSpec(text: string, source: string): BundleSpec {
  const checked = checkBundleSpec(text, source)
  if (checked.problems.length > 0) throw invalidDefinition(source, checked)
  return checked.spec as BundleSpec
}

interface Checked {
  /** Complete only when there are no problems. */
  spec: BundleSpec | undefined
  problems: YamlProblem[]
  hints: string[]
  localPaths: LocalPathRef[]
}

function checkBundleSpec(text: string, display: string): Checked {
  const parsed = parseYaml(text)
  checkYamlSyntax(parsed, text, display, path.resolve(display), {
    subject: 'A bundle definition',
    docsHint: DOCS_HINT,
  })
  const checker = new BundleChecker(parsed.doc, parsed.lines, display)
  const spec = checker.check(path.resolve(display))
  return { spec, problems: checker.problems, hints: checker.hints, localPaths: checker.localPaths }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

function readError(file: string, error: unknown): AirgapError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new AirgapError('E_INPUT', `Bundle definition ${file} not found.`, {
      hints: ['Give the path of a bundle definition, e.g. bundles/demo.yaml.'],
      data: { file },
      cause: error,
    })
  }
  if (code === 'EISDIR') {
    return new AirgapError('E_INPUT', `Bundle definition ${file} is a folder, not a file.`, {
      hints: ['Give the path of a bundle definition file, e.g. bundles/demo.yaml.'],
      data: { file },
      cause: error,
    })
  }
  const reason = error instanceof Error ? error.message : String(error)
  return new AirgapError('E_ENVIRONMENT', `Cannot read bundle definition ${file}: ${reason}`, {
    data: { file },
    cause: error,
  })
}

function invalidDefinition(display: string, checked: Checked): AirgapError {
  const problems = sortProblems(checked.problems)
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`
  const message = [
    `${display} is not a valid bundle definition (${count}):`,
    ...problems.map((problem) => formatProblem(display, problem)),
  ].join('\n')
  return new AirgapError('E_INPUT', message, {
    hints: [...checked.hints, DOCS_HINT],
    data: { file: display, source: path.resolve(display), problems },
  })
}
