/**
 * The charts section of a bundle definition: each entry's name, version and one source (a chart repository, a git
 * repository at a ref, or a local folder), values and images, read by the rule tables of bundle-rules.ts. A base of
 * BundleChecker, which reads the other sections; also home of what both need (image references, local paths to
 * check on disk).
 */
import { CHART_RULES, CHART_SOURCES, GIT_SOURCE_RULES } from './bundle-rules.js'
import { checkImageReferenceSyntax, IMAGE_REFERENCE_EXPECTED } from './image-reference-syntax.js'
import type { ChartSpec, GitChartSourceSpec } from './types.js'
import {
  CHART_FOLDER_EXPECTED,
  CHART_REPO_EXPECTED,
  CHART_VERSION_EXPECTED,
  checkChartName,
  checkChartVersion,
  checkGitPath,
  checkGitRef,
  checkGitUrl,
  checkStagePath,
  checkUrl,
  q,
} from './value-checks.js'
import { type Field, joinPath, YamlChecker } from './yaml-checker.js'

/** A path in the definition to a local file or folder (a stage, a chart folder), checked for existence on load. */
export interface LocalPathRef {
  value: string
  path: string
  line: number
  column: number
  expected: string
}

export class ChartSectionChecker extends YamlChecker {
  readonly localPaths: LocalPathRef[] = []

  protected charts(f: Field): ChartSpec[] | undefined {
    const items = this.list(
      f,
      'a mapping {name, version, one source of repo, git or path, values, discoverImages, extraImages}',
    )
    if (items === undefined) return undefined
    const seen = new Map<string, string>()
    const result: ChartSpec[] = []
    for (const item of items) {
      const fields = this.mapping(item, CHART_RULES)
      if (fields === undefined) continue
      const name = this.required(fields.name, (g) => this.text(g, checkChartName))
      const sources = CHART_SOURCES.filter((source) => fields[source] !== undefined)
      if (sources.length !== 1) {
        const second = sources[1] === undefined ? undefined : fields[sources[1]]
        // No source at all is reported as a missing repo (the usual source), its expected value naming the others.
        this.report(
          second ? this.at(second) : [item.value, item.key],
          second ? second.path : joinPath(item.path, 'repo'),
          second ? `is given with ${sources[0]}` : 'is missing',
          'exactly one source: repo (a chart repository), git (a git repository) or path (a local folder)',
        )
      }
      const source = sources.length === 1 ? sources[0] : undefined
      const version = this.optional(fields.version, (g) => this.text(g, checkChartVersion))
      if (source === 'repo' && fields.version === undefined) {
        this.report(
          [item.value, item.key],
          joinPath(item.path, 'version'),
          'is missing',
          `${CHART_VERSION_EXPECTED} (a chart from a repository is pinned to its version)`,
        )
      }
      const repo = this.required(fields.repo, (g) =>
        this.text(g, (v) => checkUrl(v, ['http:', 'https:', 'oci:']), { expected: CHART_REPO_EXPECTED }),
      )
      const git = this.required(fields.git, (g) => this.gitSource(g))
      const folder = this.required(fields.path, (g) => this.chartFolder(g))
      const values = this.optional(fields.values, (g) => this.values(g))
      const discoverImages = this.optional(fields.discoverImages, (g) => this.boolean(g)) ?? true
      const extraImages = this.optional(fields.extraImages, (g) => this.extraImages(g)) ?? []
      if (name === undefined || source === undefined) continue
      const common = { name, discoverImages, extraImages, ...(values !== undefined ? { values } : {}) }
      let chart: ChartSpec
      let key: string
      let what: string
      if (source === 'repo') {
        if (repo === undefined || version === undefined) continue
        chart = { ...common, version, repo }
        key = JSON.stringify(['repo', name, version, repo.replace(/\/+$/, '')])
        what = `the chart ${name} ${version} from ${repo} is listed twice`
      } else if (source === 'git') {
        if (git === undefined || (fields.version !== undefined && version === undefined)) continue
        chart = { ...common, ...(version !== undefined ? { version } : {}), git }
        key = JSON.stringify(['git', name, git.url.replace(/\/+$/, ''), git.ref, git.path])
        what = `the chart ${name} from ${git.url} at ${git.ref} is listed twice`
      } else {
        if (folder === undefined || (fields.version !== undefined && version === undefined)) continue
        chart = { ...common, ...(version !== undefined ? { version } : {}), path: folder }
        key = JSON.stringify(['path', name, folder.replace(/\/+$/, '')])
        what = `the chart ${name} from the folder ${folder} is listed twice`
      }
      if (this.duplicate(seen, key, item, what, 'each chart once')) continue
      result.push(chart)
    }
    return result
  }

  /** `git: {url, ref, path}` of a chart: its path is normalized ("" for the repository's root). */
  private gitSource(f: Field): GitChartSourceSpec | undefined {
    const fields = this.mapping(f, GIT_SOURCE_RULES)
    if (fields === undefined) return undefined
    const url = this.required(fields.url, (g) => this.text(g, checkGitUrl))
    const ref = this.required(fields.ref, (g) => this.text(g, checkGitRef))
    const path = this.optional(fields.path, (g) => this.text(g, checkGitPath, { allowEmpty: true })) ?? ''
    if (url === undefined || ref === undefined || (fields.path !== undefined && path === undefined))
      return undefined
    const normalized = path
      .split('/')
      .filter((part) => part !== '' && part !== '.')
      .join('/')
    return { url, ref: /^[0-9a-fA-F]{40}$/.test(ref) ? ref.toLowerCase() : ref, path: normalized }
  }

  /** `path:` of a chart: a folder relative to the definition's, checked for existence by the loader. */
  private chartFolder(f: Field): string | undefined {
    const value = this.text(f, checkStagePath, { expected: CHART_FOLDER_EXPECTED })
    if (value === undefined) return undefined
    const { line, column } = this.position(this.at(f))
    this.localPaths.push({ value, path: f.path, line, column, expected: 'a chart folder' })
    return value
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

  protected imageRef(f: Field): string | undefined {
    const check = (value: string): string | undefined => {
      const problem = checkImageReferenceSyntax(value)
      return problem === undefined ? undefined : `${q(value)} is not a valid image reference (${problem})`
    }
    return this.text(f, check, { expected: IMAGE_REFERENCE_EXPECTED })
  }
}
