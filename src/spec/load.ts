/**
 * Loads a bundle definition (bundles/*.yaml) and validates it completely before anything else is done. Every problem
 * is collected (not just the first) and reported in one AirgapError('E_INPUT') whose message has one line per
 * problem, `file:line:col: <field path>: <what is wrong>; expected <what>`, and whose data.problems lists them as
 * {line, column, path, message}. The schema is documented in docs/bundle-definition.md.
 */
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
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
import { checkImageReferenceSyntax, IMAGE_REFERENCE_EXPECTED } from './image-reference-syntax.js'
import {
  type AptSourceSpec,
  BUNDLE_API_VERSION,
  type BundleSpec,
  type ChartSpec,
  type FileSpec,
  type ImageSpec,
  type PackageRepositorySpec,
  type RpmSourceSpec,
  type StageSpec,
} from './types.js'

/** One problem found in a definition; line and column are 1-based, path is like `images[3].ref` ('' = document). */
export interface SpecProblem {
  line: number
  column: number
  path: string
  /** `<what is wrong>; expected <what>` */
  message: string
}

export const DEFAULT_PLATFORMS: readonly string[] = ['linux/amd64']

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

/** A path in the definition to a local file or folder (a stage, a keyring), checked for existence on load. */
interface LocalPathRef {
  value: string
  path: string
  line: number
  column: number
  expected: string
}

interface Checked {
  /** Complete only when there are no problems. */
  spec: BundleSpec | undefined
  problems: SpecProblem[]
  hints: string[]
  localPaths: LocalPathRef[]
}

function checkBundleSpec(text: string, display: string): Checked {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false })
  throwOnSyntaxErrors(doc, lines, text, display)
  const checker = new Checker(doc, lines, display)
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

function formatProblem(display: string, problem: SpecProblem): string {
  const where = `${display}:${problem.line}:${problem.column}`
  return problem.path === ''
    ? `${where}: ${problem.message}`
    : `${where}: ${problem.path}: ${problem.message}`
}

function sortProblems(problems: SpecProblem[]): SpecProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column)
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

const SYNTAX_HINTS: Record<string, string> = {
  MULTIPLE_DOCS:
    'A bundle definition is a single YAML document: remove the "---" separator and what follows.',
  DUPLICATE_KEY: 'Each field may appear once in a mapping: remove or merge the repeated one.',
  TAB_AS_INDENT: 'YAML indents with spaces, not tabs.',
  BAD_INDENT:
    'Check the indentation: the items of one mapping or list start in the same column, with spaces.',
  MISSING_CHAR: 'Check for an unclosed quote or bracket.',
}

const SYNTAX_ERRORS_SHOWN = 5

function throwOnSyntaxErrors(doc: Document, lines: LineCounter, text: string, display: string): void {
  const problems: SpecProblem[] = []
  const hints = new Set<string>()
  for (const error of doc.errors) {
    const { line, col } = lines.linePos(error.pos[0])
    problems.push({ line, column: col, path: '', message: `YAML syntax error: ${error.message}` })
    const hint = SYNTAX_HINTS[error.code]
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
    hints: [...hints, DOCS_HINT],
    data: { file: display, source: path.resolve(display), problems },
  })
}

// ---------------------------------------------------------------------------------------------------------------
// Checks of single values. Each returns what is wrong (for "<what is wrong>; expected <what>"), or undefined.

const q = (value: string): string => JSON.stringify(value)

const LABEL_EXPECTED =
  'lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters'

function checkLabel(value: string): string | undefined {
  if (/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(value) && value.length <= 63) return undefined
  if (value.length > 63) return `${q(value)} is ${value.length} characters long`
  if (/[A-Z]/.test(value)) return `${q(value)} has uppercase letters`
  if (!/^[a-z0-9-]*$/.test(value))
    return `${q(value)} has characters other than lowercase letters, digits and "-"`
  return `${q(value)} starts or ends with "-"`
}

const VERSION_EXPECTED = 'a version of letters, digits, ".", "+" and "-", such as 1.0.0 or 2025.10.1-rc1'

function checkVersion(value: string): string | undefined {
  if (/^[0-9A-Za-z.+-]+$/.test(value)) return undefined
  return `${q(value)} has characters other than letters, digits, ".", "+" and "-"`
}

const PLATFORM_EXPECTED = 'os/arch[/variant] in lowercase, such as linux/amd64 or linux/arm64/v8'

function checkPlatform(value: string): string | undefined {
  if (/^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/.test(value)) return undefined
  if (/[A-Z]/.test(value)) return `${q(value)} has uppercase letters`
  const parts = value.split('/').length
  if (parts < 2 || parts > 3) return `${q(value)} has ${parts} "/"-separated parts, not 2 or 3`
  return `${q(value)} is not a valid platform`
}

const CHART_NAME_EXPECTED = 'a chart name of letters, digits, ".", "_" and "-", such as gpu-operator'

function checkChartName(value: string): string | undefined {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)) return undefined
  if (value.includes('/'))
    return `${q(value)} has a "/" (the repository goes in repo, the name alone in name)`
  return `${q(value)} is not a chart name`
}

const CHART_VERSION_EXPECTED = 'an exact chart version such as 1.2.3 or v25.3.0'

function checkChartVersion(value: string): string | undefined {
  if (/^v?[0-9][0-9A-Za-z.+-]*$/.test(value) && !/(?:^|\.)[xX*](?:\.|$)/.test(value)) return undefined
  if (/[\^~<>=*|, ]|(?:^|\.)[xX](?:\.|$)/.test(value)) {
    return `${q(value)} is a version range (a bundle pins exact versions)`
  }
  return `${q(value)} is not a chart version`
}

const CHART_REPO_EXPECTED =
  'an http://, https:// or oci:// URL, such as https://helm.ngc.nvidia.com/nvidia or oci://registry-1.docker.io/bitnamicharts'
const FILE_URL_EXPECTED = 'an http:// or https:// URL'

function checkUrl(value: string, protocols: readonly string[]): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return `${q(value)} is not a URL`
  }
  if (!protocols.includes(url.protocol)) return `${q(value)} has the scheme ${q(url.protocol.slice(0, -1))}`
  if (!value.toLowerCase().startsWith(`${url.protocol}//`))
    return `${q(value)} lacks "//" after "${url.protocol}"`
  // Never echo the value: it holds a secret.
  if (url.username !== '' || url.password !== '') return 'the URL contains a user name or password'
  if (url.hostname === '') return `${q(value)} has no host`
  return undefined
}

const SHA256_EXPECTED = '64 lowercase hex digits (as printed by sha256sum)'

function checkSha256(value: string): string | undefined {
  if (/^[0-9a-f]{64}$/.test(value)) return undefined
  if (value.startsWith('sha256:')) return `${q(value)} starts with "sha256:"; give the hex digits alone`
  if (/^[0-9a-fA-F]{64}$/.test(value)) return `${q(value)} has uppercase hex digits`
  if (/^[0-9a-fA-F]*$/.test(value)) return `${q(value)} has ${value.length} hex digits, not 64`
  return `${q(value)} has characters other than hex digits`
}

const FILE_PATH_EXPECTED =
  'a relative path inside the bundle\'s files/ folder, such as bin/linux-amd64/helm.tar.gz: "/" between ' +
  'segments, no leading "/", no "\\", no empty, "." or ".." segments'

function checkFilePath(value: string): string | undefined {
  if (value.includes('\\')) return `${q(value)} has a "\\"; separate folders with "/"`
  if (value.startsWith('/')) return `${q(value)} is absolute (starts with "/")`
  if (/^[A-Za-z]:/.test(value)) return `${q(value)} is absolute (starts with a drive letter)`
  if (value.includes('\0')) return `${q(value)} has a NUL character`
  const segments = value.split('/')
  if (segments.includes('')) return `${q(value)} has an empty segment (a trailing "/" or "//")`
  if (segments.includes('..')) return `${q(value)} has a ".." segment`
  if (segments.includes('.')) return `${q(value)} has a "." segment`
  return undefined
}

function checkWord(value: string): string | undefined {
  return WORD_PATTERN.test(value)
    ? undefined
    : `${q(value)} has characters other than letters, digits and . _ + ~ : -`
}

// apt: name[:arch][=version] or name[:arch] (op version); rpm: name [op evr].
const PACKAGE_REQUEST_PATTERN =
  /^[A-Za-z0-9][A-Za-z0-9._+~-]*(:[a-z0-9-]+)?(=\S+|\s*\(\s*(<<|<=|=|>=|>>)\s*[^\s()]+\s*\)|\s+(<|<=|=|>=|>)\s+\S+)?$/

function checkPackageRequest(value: string): string | undefined {
  return PACKAGE_REQUEST_PATTERN.test(value) ? undefined : `${q(value)} is not a package request`
}

function checkKeyringPath(value: string): string | undefined {
  if (value.includes('\0')) return `${q(value)} has a NUL character`
  return undefined
}

const STAGE_PATH_EXPECTED = "a path relative to the definition's folder, such as ../manifests/<stage>"

function checkStagePath(value: string): string | undefined {
  if (value.includes('\\')) return `${q(value)} has a "\\"; separate folders with "/"`
  if (path.posix.isAbsolute(value) || /^[A-Za-z]:/.test(value)) return `${q(value)} is absolute`
  if (value.includes('\0')) return `${q(value)} has a NUL character`
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// The document walk

/** A value in the document: a mapping field (key set) or a list item (key undefined). */
interface Field {
  path: string
  key: unknown
  value: unknown
  parent: unknown
  /** What a valid value looks like, for messages. */
  expected: string
}

interface Rule {
  required?: boolean
  expected: string
}

const TOP_RULES: Record<string, Rule> = {
  apiVersion: { required: true, expected: q(BUNDLE_API_VERSION) },
  kind: { required: true, expected: '"Bundle"' },
  metadata: { required: true, expected: 'a mapping with name, version and optional description' },
  platforms: { expected: `a list of ${PLATFORM_EXPECTED}` },
  images: { expected: 'a list of image references' },
  charts: { expected: 'a list of charts' },
  files: { expected: 'a list of files' },
  packages: { expected: 'a list of package repositories' },
  stages: { expected: 'a list of stages' },
}

const METADATA_RULES: Record<string, Rule> = {
  name: { required: true, expected: `a name of ${LABEL_EXPECTED}` },
  version: { required: true, expected: VERSION_EXPECTED },
  description: { expected: 'a text' },
}

const IMAGE_RULES: Record<string, Rule> = {
  ref: { required: true, expected: IMAGE_REFERENCE_EXPECTED },
  platforms: { expected: `a list of ${PLATFORM_EXPECTED}` },
}

const CHART_RULES: Record<string, Rule> = {
  name: { required: true, expected: CHART_NAME_EXPECTED },
  version: { required: true, expected: CHART_VERSION_EXPECTED },
  repo: { required: true, expected: CHART_REPO_EXPECTED },
  values: { expected: 'a mapping of chart values' },
  discoverImages: { expected: 'true or false' },
  extraImages: { expected: `a list of image references, each ${IMAGE_REFERENCE_EXPECTED}` },
}

const FILE_RULES: Record<string, Rule> = {
  url: { required: true, expected: FILE_URL_EXPECTED },
  sha256: { required: true, expected: SHA256_EXPECTED },
  path: { required: true, expected: FILE_PATH_EXPECTED },
  size: { expected: 'a whole number of bytes, 0 or more' },
}

const STAGE_RULES: Record<string, Rule> = {
  name: { required: true, expected: `a stage name of ${LABEL_EXPECTED}` },
  path: { required: true, expected: STAGE_PATH_EXPECTED },
}

const PACKAGE_NAME_EXPECTED =
  'a package request such as nfs-common, conntrack:amd64, "socat (>= 1.7)" or "nfs-utils >= 2.5"'

const PACKAGE_REPOSITORY_RULES: Record<string, Rule> = {
  name: { required: true, expected: `a repository name of ${LABEL_EXPECTED}` },
  apt: { expected: 'an apt source {mirror, suite or suites, components, architectures, keyrings, trusted}' },
  rpm: { expected: 'an rpm source {baseurl, architectures, keyrings, signed, trusted}' },
  packages: { required: true, expected: `a list of packages, each ${PACKAGE_NAME_EXPECTED}` },
  kernels: { expected: 'a list of kernel versions as `uname -r` prints them, such as 5.15.0-91-generic' },
  baseline: { expected: 'a mapping {priorities, packages}: what the nodes already have' },
  nodes: {
    expected:
      'all (node-setup.sh sets the repository up on every node of its release; the default) or chosen (only where --repository names it, e.g. GPU nodes)',
  },
}

const APT_SOURCE_RULES: Record<string, Rule> = {
  mirror: { required: true, expected: FILE_URL_EXPECTED },
  suite: { expected: 'a suite or codename, such as jammy or bookworm' },
  suites: {
    expected: 'a list of suites of the archive read together, such as [jammy, jammy-updates, jammy-security]',
  },
  components: { expected: 'a list of components, such as [main, universe]' },
  architectures: { expected: "a list of Debian architectures, the nodes' own first, such as [amd64]" },
  keyrings: {
    expected: "a list of OpenPGP keyring files (absolute, or relative to the definition's folder)",
  },
  trusted: { expected: 'true or false' },
}

const RPM_SOURCE_RULES: Record<string, Rule> = {
  baseurl: { required: true, expected: `${FILE_URL_EXPECTED} (the folder holding repodata/)` },
  signed: { expected: 'repomd (the keyrings sign repodata/repomd.xml) or packages (they sign every .rpm)' },
  architectures: { expected: 'a list of rpm architectures, such as [x86_64, noarch]' },
  keyrings: {
    expected: "a list of OpenPGP public key files (absolute, or relative to the definition's folder)",
  },
  trusted: { expected: 'true or false' },
}

const BASELINE_RULES: Record<string, Rule> = {
  priorities: { expected: 'a list of apt priorities: required, important, standard' },
  packages: { expected: 'a list of package names the nodes have' },
}

const WORD_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+~:-]*$/

const join = (base: string, name: string): string => (base === '' ? name : `${base}.${name}`)

const isEmpty = (node: unknown): boolean =>
  node === null || node === undefined || (isScalar(node) && node.value === null)

class Checker {
  readonly problems: SpecProblem[] = []
  readonly hints: string[] = []
  readonly localPaths: LocalPathRef[] = []

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly display: string,
  ) {}

  check(source: string): BundleSpec | undefined {
    const root: Field = {
      path: '',
      key: undefined,
      value: this.doc.contents,
      parent: undefined,
      expected: 'a mapping with apiVersion, kind, metadata, images, …',
    }
    if (isEmpty(root.value)) {
      this.report([], '', 'the definition is empty', root.expected)
      return undefined
    }
    const top = this.mapping(root, TOP_RULES, {
      name: 'metadata.name',
      version: 'metadata.version',
      description: 'metadata.description',
    })
    if (top === undefined) return undefined

    const apiVersion = this.required(top.apiVersion, (f) => this.exact(f, BUNDLE_API_VERSION))
    const kind = this.required(top.kind, (f) => this.exact(f, 'Bundle'))
    const metadata = this.required(top.metadata, (f) => this.metadata(f))
    const platforms = this.optional(top.platforms, (f) => this.platforms(f)) ?? [...DEFAULT_PLATFORMS]
    const images = this.optional(top.images, (f) => this.images(f)) ?? []
    const charts = this.optional(top.charts, (f) => this.charts(f)) ?? []
    const files = this.optional(top.files, (f) => this.files(f)) ?? []
    const stages = this.optional(top.stages, (f) => this.stages(f)) ?? []
    const packages = this.optional(top.packages, (f) => this.packages(f)) ?? []

    if (
      this.problems.length > 0 ||
      apiVersion === undefined ||
      kind === undefined ||
      metadata === undefined
    ) {
      return undefined
    }
    const spec: BundleSpec = {
      apiVersion: BUNDLE_API_VERSION,
      kind: 'Bundle',
      metadata,
      platforms,
      images,
      charts,
      files,
      packages,
      stages,
      source,
    }
    return spec
  }

  // --- sections

  private metadata(f: Field): BundleSpec['metadata'] | undefined {
    const fields = this.mapping(f, METADATA_RULES)
    if (fields === undefined) return undefined
    const name = this.required(fields.name, (g) => this.text(g, checkLabel))
    const version = this.required(fields.version, (g) => this.text(g, checkVersion))
    const description = this.optional(fields.description, (g) =>
      this.text(g, undefined, { allowEmpty: true }),
    )
    if (name === undefined || version === undefined) return undefined
    return description === undefined ? { name, version } : { name, version, description }
  }

  private platforms(f: Field): string[] | undefined {
    const items = this.list(f, PLATFORM_EXPECTED)
    if (items === undefined) return undefined
    if (items.length === 0) {
      this.report(this.at(f), f.path, 'is an empty list', `at least one ${PLATFORM_EXPECTED}`)
      return undefined
    }
    const seen = new Map<string, string>()
    const result: string[] = []
    for (const item of items) {
      const value = this.text(item, checkPlatform)
      if (value === undefined) continue
      if (this.duplicate(seen, value, item, `${q(value)} is listed twice`, 'each platform once')) continue
      result.push(value)
    }
    return result
  }

  private images(f: Field): ImageSpec[] | undefined {
    const items = this.list(f, `an image reference ${IMAGE_REFERENCE_EXPECTED} or a mapping {ref, platforms}`)
    if (items === undefined) return undefined
    const seen = new Map<string, string>()
    const result: ImageSpec[] = []
    for (const item of items) {
      let image: ImageSpec | undefined
      let refField: Field = item
      if (isMap(item.value)) {
        const fields = this.mapping(item, IMAGE_RULES)
        if (fields === undefined) continue
        if (fields.ref !== undefined) refField = fields.ref
        const ref = this.required(fields.ref, (g) => this.imageRef(g))
        const platforms = this.optional(fields.platforms, (g) => this.platforms(g))
        if (ref !== undefined) image = platforms === undefined ? { ref } : { ref, platforms }
      } else if (isScalar(item.value) && typeof item.value.value === 'string') {
        const ref = this.imageRef(item)
        if (ref !== undefined) image = { ref }
      } else {
        this.wrongType(item, item.expected)
      }
      if (image === undefined) continue
      if (this.duplicate(seen, image.ref, refField, `${q(image.ref)} is listed twice`, 'each image once'))
        continue
      result.push(image)
    }
    return result
  }

  private charts(f: Field): ChartSpec[] | undefined {
    const items = this.list(f, 'a mapping {name, version, repo, values, discoverImages, extraImages}')
    if (items === undefined) return undefined
    const seen = new Map<string, string>()
    const result: ChartSpec[] = []
    for (const item of items) {
      const fields = this.mapping(item, CHART_RULES)
      if (fields === undefined) continue
      const name = this.required(fields.name, (g) => this.text(g, checkChartName))
      const version = this.required(fields.version, (g) => this.text(g, checkChartVersion))
      const repo = this.required(fields.repo, (g) =>
        this.text(g, (v) => checkUrl(v, ['http:', 'https:', 'oci:'])),
      )
      const values = this.optional(fields.values, (g) => this.values(g))
      const discoverImages = this.optional(fields.discoverImages, (g) => this.boolean(g)) ?? true
      const extraImages = this.optional(fields.extraImages, (g) => this.extraImages(g)) ?? []
      if (name === undefined || version === undefined || repo === undefined) continue
      const key = JSON.stringify([name, version, repo.replace(/\/+$/, '')])
      const what = `the chart ${name} ${version} from ${repo} is listed twice`
      if (this.duplicate(seen, key, item, what, 'each chart (name, version, repo) once')) continue
      const chart: ChartSpec = { name, version, repo, discoverImages, extraImages }
      if (values !== undefined) chart.values = values
      result.push(chart)
    }
    return result
  }

  private extraImages(f: Field): string[] | undefined {
    const items = this.list(f, IMAGE_REFERENCE_EXPECTED)
    if (items === undefined) return undefined
    const seen = new Map<string, string>()
    const result: string[] = []
    for (const item of items) {
      const ref = this.imageRef(item)
      if (ref === undefined) continue
      if (this.duplicate(seen, ref, item, `${q(ref)} is listed twice`, 'each image once')) continue
      result.push(ref)
    }
    return result
  }

  private files(f: Field): FileSpec[] | undefined {
    const items = this.list(f, 'a mapping {url, sha256, path, size}')
    if (items === undefined) return undefined
    const seen = new Map<string, string>()
    const result: FileSpec[] = []
    const pathFields = new Map<string, Field>()
    for (const item of items) {
      const fields = this.mapping(item, FILE_RULES)
      if (fields === undefined) continue
      const url = this.required(fields.url, (g) => this.text(g, (v) => checkUrl(v, ['http:', 'https:'])))
      const sha256 = this.required(fields.sha256, (g) => this.text(g, checkSha256))
      const filePath = this.required(fields.path, (g) => this.text(g, checkFilePath))
      const size = this.optional(fields.size, (g) => this.size(g))
      if (filePath !== undefined && fields.path !== undefined) {
        const what = `${q(filePath)} is used by two files`
        if (this.duplicate(seen, filePath, fields.path, what, 'a different path for each file')) continue
        pathFields.set(filePath, fields.path)
      }
      if (url === undefined || sha256 === undefined || filePath === undefined) continue
      result.push(
        size === undefined ? { url, sha256, path: filePath } : { url, sha256, path: filePath, size },
      )
    }
    // A file cannot also be a folder of another file.
    for (const [filePath, field] of pathFields) {
      const segments = filePath.split('/')
      for (let n = 1; n < segments.length; n++) {
        const folder = segments.slice(0, n).join('/')
        const other = pathFields.get(folder)
        if (other === undefined) continue
        this.report(
          this.at(field),
          field.path,
          `${q(filePath)} is inside ${q(folder)}, which ${other.path} (${this.where(other)}) makes a file`,
          'paths where no file is the folder of another',
        )
      }
    }
    return result
  }

  private packages(f: Field): PackageRepositorySpec[] | undefined {
    const items = this.list(f, 'a mapping {name, apt or rpm, packages, kernels, baseline, nodes}')
    if (items === undefined) return undefined
    const seen = new Map<string, string>()
    const result: PackageRepositorySpec[] = []
    for (const item of items) {
      const fields = this.mapping(item, PACKAGE_REPOSITORY_RULES)
      if (fields === undefined) continue
      const name = this.required(fields.name, (g) => this.text(g, checkLabel))
      const apt = this.optional(fields.apt, (g) => this.aptSource(g))
      const rpm = this.optional(fields.rpm, (g) => this.rpmSource(g))
      const kind = fields.apt !== undefined ? 'apt' : 'rpm'
      if ((fields.apt === undefined) === (fields.rpm === undefined)) {
        const both = fields.apt !== undefined
        this.report(
          both ? this.at(fields.rpm!) : [isMap(item.value) ? item.value : undefined],
          both ? fields.rpm!.path : item.path,
          both ? 'has both apt and rpm' : 'has neither apt nor rpm',
          'exactly one source: apt or rpm',
        )
      }
      const packages = this.required(fields.packages, (g) => this.words(g, true))
      const kernels = this.optional(fields.kernels, (g) => this.words(g, false)) ?? []
      const baseline = this.optional(fields.baseline, (g) => this.baseline(g, kind))
      const nodes = this.optional(fields.nodes, (g) =>
        this.text(g, (v) => (v === 'all' || v === 'chosen' ? undefined : `${q(v)} is not all or chosen`)),
      ) as PackageRepositorySpec['nodes'] | undefined
      if (name !== undefined && fields.name !== undefined) {
        const what = `the ${kind} repository name ${q(name)} is used twice`
        if (
          this.duplicate(seen, `${kind}/${name}`, fields.name, what, 'a different name for each repository')
        )
          continue
      }
      if (name === undefined || packages === undefined || (apt === undefined && rpm === undefined)) continue
      const repository: PackageRepositorySpec = { name, packages, kernels }
      if (apt !== undefined) repository.apt = apt
      if (rpm !== undefined) repository.rpm = rpm
      if (baseline !== undefined) repository.baseline = baseline
      if (nodes === 'chosen') repository.nodes = nodes
      result.push(repository)
    }
    return result
  }

  private aptSource(f: Field): AptSourceSpec | undefined {
    const fields = this.mapping(f, APT_SOURCE_RULES)
    if (fields === undefined) return undefined
    const mirror = this.required(fields.mirror, (g) => this.text(g, (v) => checkUrl(v, ['http:', 'https:'])))
    const suite = this.optional(fields.suite, (g) => this.text(g, checkWord))
    const suites = this.optional(fields.suites, (g) => this.words(g, false))
    if ((fields.suite === undefined) === (fields.suites === undefined)) {
      this.report(
        fields.suite ? this.at(fields.suites!) : [f.value, f.key],
        join(f.path, fields.suite ? 'suites' : 'suite'),
        fields.suite ? 'is given with suite' : 'is missing',
        'one of suite (one suite) or suites (a list)',
      )
      return undefined
    }
    const components = this.optional(fields.components, (g) => this.words(g, false)) ?? ['main']
    const architectures = this.optional(fields.architectures, (g) => this.words(g, false)) ?? ['amd64']
    const { keyrings, trusted } = this.keyrings(f, fields)
    const list = suites ?? (suite !== undefined ? [suite] : undefined)
    if (mirror === undefined || list === undefined || keyrings === undefined) return undefined
    return { mirror, suites: list, components, architectures, keyrings, trusted }
  }

  private rpmSource(f: Field): RpmSourceSpec | undefined {
    const fields = this.mapping(f, RPM_SOURCE_RULES)
    if (fields === undefined) return undefined
    const baseurl = this.required(fields.baseurl, (g) =>
      this.text(g, (v) => checkUrl(v, ['http:', 'https:'])),
    )
    const architectures = this.optional(fields.architectures, (g) => this.words(g, false)) ?? [
      'x86_64',
      'noarch',
    ]
    const signed = this.optional(fields.signed, (g) =>
      this.text(g, (v) =>
        v === 'repomd' || v === 'packages' ? undefined : `${q(v)} is not repomd or packages`,
      ),
    ) as RpmSourceSpec['signed'] | undefined
    const { keyrings, trusted } = this.keyrings(f, fields)
    if (baseurl === undefined || keyrings === undefined) return undefined
    return { baseurl, architectures, keyrings, trusted, signed: signed ?? 'repomd' }
  }

  /** keyrings and trusted of a source: signed metadata needs a keyring, unless `trusted: true` says otherwise. */
  private keyrings(
    f: Field,
    fields: Record<string, Field>,
  ): { keyrings: string[] | undefined; trusted: boolean } {
    const trusted = this.optional(fields.trusted, (g) => this.boolean(g)) ?? false
    const items =
      fields.keyrings === undefined || isEmpty(fields.keyrings.value)
        ? []
        : this.list(fields.keyrings, fields.keyrings.expected)
    if (items === undefined) return { keyrings: undefined, trusted }
    const keyrings: string[] = []
    for (const item of items) {
      const value = this.text(item, checkKeyringPath, { expected: fields.keyrings!.expected })
      // Checked when the bundle is made: a --mirror-keyring may stand in for it.
      if (value !== undefined) keyrings.push(value)
    }
    if (keyrings.length === 0 && !trusted) {
      this.report(
        fields.keyrings ? this.at(fields.keyrings) : [f.value, f.key],
        join(f.path, 'keyrings'),
        fields.keyrings ? 'is empty' : 'is missing',
        "the keyring the repository's metadata is signed with (or `trusted: true` to accept unsigned metadata)",
      )
      return { keyrings: undefined, trusted }
    }
    return { keyrings, trusted }
  }

  private baseline(f: Field, kind: 'apt' | 'rpm'): PackageRepositorySpec['baseline'] | undefined {
    const fields = this.mapping(f, BASELINE_RULES)
    if (fields === undefined) return undefined
    const priorities = this.optional(fields.priorities, (g) => this.words(g, false))
    const packages = this.optional(fields.packages, (g) => this.words(g, false))
    if (priorities !== undefined && kind === 'rpm') {
      this.report(
        this.at(fields.priorities!),
        fields.priorities!.path,
        'is an apt setting',
        'baseline.packages for rpm repositories',
      )
      return undefined
    }
    for (const priority of priorities ?? []) {
      if (!['required', 'important', 'standard', 'optional', 'extra'].includes(priority)) {
        this.report(
          this.at(fields.priorities!),
          fields.priorities!.path,
          `${q(priority)} is not an apt priority`,
          fields.priorities!.expected,
        )
        return undefined
      }
    }
    return {
      ...(priorities !== undefined ? { priorities } : {}),
      ...(packages !== undefined ? { packages } : {}),
    }
  }

  /** A non-empty list of distinct plain texts (package requests when `requests`, else words). */
  private words(f: Field, requests: boolean): string[] | undefined {
    const items = this.list(f, f.expected)
    if (items === undefined) return undefined
    if (items.length === 0) {
      this.report(this.at(f), f.path, 'is an empty list', f.expected)
      return undefined
    }
    const seen = new Map<string, string>()
    const result: string[] = []
    for (const item of items) {
      const value = this.text(item, requests ? checkPackageRequest : checkWord, { expected: f.expected })
      if (value === undefined) continue
      if (this.duplicate(seen, value, item, `${q(value)} is listed twice`, 'each once')) continue
      result.push(value)
    }
    return result
  }

  private stages(f: Field): StageSpec[] | undefined {
    const items = this.list(f, 'a mapping {name, path}')
    if (items === undefined) return undefined
    const seen = new Map<string, string>()
    const result: StageSpec[] = []
    for (const item of items) {
      const fields = this.mapping(item, STAGE_RULES)
      if (fields === undefined) continue
      const name = this.required(fields.name, (g) => this.text(g, checkLabel))
      const stagePath = this.required(fields.path, (g) => this.text(g, checkStagePath))
      if (name !== undefined && fields.name !== undefined) {
        const what = `the stage name ${q(name)} is used twice`
        if (this.duplicate(seen, name, fields.name, what, 'a different name for each stage')) continue
      }
      if (stagePath !== undefined && fields.path !== undefined) {
        const { line, column } = this.position(this.at(fields.path))
        this.localPaths.push({
          value: stagePath,
          path: fields.path.path,
          line,
          column,
          expected: 'a folder or file',
        })
      }
      if (name === undefined || stagePath === undefined) continue
      result.push({ name, path: stagePath })
    }
    return result
  }

  // --- value readers: each reports what is wrong and returns undefined, or returns the value

  private required<T>(field: Field | undefined, read: (f: Field) => T | undefined): T | undefined {
    // A missing required field was reported by mapping(); an empty one is reported by read().
    return field === undefined ? undefined : read(field)
  }

  /** An optional field: absent or empty (`key:` with no value) means "use the default". */
  private optional<T>(field: Field | undefined, read: (f: Field) => T | undefined): T | undefined {
    return field === undefined || isEmpty(field.value) ? undefined : read(field)
  }

  private mapping(
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
        path: join(f.path, name),
        key: pair.key,
        value: this.deref(pair.value),
        parent: node,
        expected: rules[name]?.expected ?? '',
      }
    }
    for (const [name, rule] of Object.entries(rules)) {
      if (rule.required && fields[name] === undefined) {
        this.report([node, f.key], join(f.path, name), 'is missing', rule.expected)
      }
    }
    return fields
  }

  private unknownField(
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
    const fieldPath = join(parent.path, name)
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
  private list(f: Field, itemExpected: string): Field[] | undefined {
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
  private text(
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

  private exact(f: Field, wanted: string): string | undefined {
    const value = this.text(f, (v) => (v === wanted ? undefined : `${q(v)} is not supported`))
    return value === wanted ? value : undefined
  }

  private imageRef(f: Field): string | undefined {
    const check = (value: string): string | undefined => {
      const problem = checkImageReferenceSyntax(value)
      return problem === undefined ? undefined : `${q(value)} is not a valid image reference (${problem})`
    }
    return this.text(f, check, { expected: IMAGE_REFERENCE_EXPECTED })
  }

  private boolean(f: Field): boolean | undefined {
    if (isScalar(f.value) && typeof f.value.value === 'boolean') return f.value.value
    this.wrongType(f, f.expected)
    return undefined
  }

  private size(f: Field): number | undefined {
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

  private values(f: Field): Record<string, unknown> | undefined {
    if (!isMap(f.value)) {
      this.wrongType(f, f.expected)
      return undefined
    }
    return this.toJS(f.value) as Record<string, unknown>
  }

  /** Reports a value of the wrong type ("is a list", "is the number 1.1", …); `wantsText` adds a hint to quote. */
  private wrongType(f: Field, expected: string, wantsText = false): void {
    const node = f.value
    let wrong = 'has the wrong type'
    if (isEmpty(node)) wrong = 'is empty'
    else if (isMap(node)) wrong = 'is a mapping'
    else if (isSeq(node)) wrong = f.path === '' ? 'the definition is a list' : 'is a list'
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
  private duplicate(
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

  private deref(node: unknown): unknown {
    // Unresolvable aliases were rejected as syntax errors.
    return isAlias(node) ? (node.resolve(this.doc) ?? null) : node
  }

  private toJS(node: unknown): unknown {
    return isNode(node) ? node.toJS(this.doc) : node
  }

  /** Where to point for a field: its value, or its key when the value is empty. */
  private at(f: Field): unknown[] {
    return isEmpty(f.value) ? [f.key, f.value, f.parent] : [f.value, f.key, f.parent]
  }

  private position(nodes: unknown[]): { line: number; column: number } {
    for (const node of nodes) {
      if (isNode(node) && node.range) {
        const { line, col } = this.lines.linePos(node.range[0])
        return { line, column: col }
      }
    }
    return { line: 1, column: 1 }
  }

  private where(f: Field): string {
    const { line, column } = this.position(this.at(f))
    return `${this.display}:${line}:${column}`
  }

  private report(at: unknown[], fieldPath: string, wrong: string, expected: string): void {
    this.problems.push({ ...this.position(at), path: fieldPath, message: `${wrong}; expected ${expected}` })
  }

  private addHint(hint: string): void {
    if (!this.hints.includes(hint)) this.hints.push(hint)
  }
}
