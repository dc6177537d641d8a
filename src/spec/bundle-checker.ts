/**
 * The sections of a bundle definition (metadata, platforms, images, charts, files, package repositories, stages): a
 * YamlChecker that reads each by its rule table (bundle-rules.ts) and value checks (value-checks.ts), collects every
 * problem with its line:col, and builds the BundleSpec when there is none. The charts section is read by its base,
 * ChartSectionChecker (chart-section-checker.ts). Paths to local files and folders (stages, chart folders, keyrings)
 * are collected for the loader to check on disk.
 */
import type { Document, LineCounter } from 'yaml'
import { isMap, isScalar } from 'yaml'
import {
  APT_SOURCE_RULES,
  BASELINE_RULES,
  DEFAULT_PLATFORMS,
  FILE_RULES,
  IMAGE_RULES,
  METADATA_RULES,
  PACKAGE_REPOSITORY_RULES,
  RPM_SOURCE_RULES,
  STAGE_RULES,
  TOP_RULES,
} from './bundle-rules.js'
import { ChartSectionChecker } from './chart-section-checker.js'
import { IMAGE_REFERENCE_EXPECTED } from './image-reference-syntax.js'
import {
  type AptSourceSpec,
  BUNDLE_API_VERSION,
  type BundleSpec,
  type FileSpec,
  type ImageSpec,
  type PackageRepositorySpec,
  type RpmSourceSpec,
  type StageSpec,
} from './types.js'
import {
  checkFilePath,
  checkKeyringPath,
  checkLabel,
  checkPackageRequest,
  checkPlatform,
  checkSha256,
  checkStagePath,
  checkUrl,
  checkVersion,
  checkWord,
  PLATFORM_EXPECTED,
  q,
} from './value-checks.js'
import { type Field, isEmpty, joinPath } from './yaml-checker.js'

export class BundleChecker extends ChartSectionChecker {
  constructor(doc: Document, lines: LineCounter, display: string) {
    super(doc, lines, display, 'the definition')
  }

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
        const from = this.optional(fields.from, (g) => this.text(g, undefined))
        if (ref !== undefined)
          image = {
            ref,
            ...(platforms === undefined ? {} : { platforms }),
            ...(from === undefined ? {} : { from }),
          }
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
        joinPath(f.path, fields.suite ? 'suites' : 'suite'),
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
        joinPath(f.path, 'keyrings'),
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
}
