/**
 * The one check of every name in bundle.json that later becomes a file name, a path or a command argument: member
 * paths, chart names and versions, stage names and files, package repositories and package paths, file paths, image
 * names, tags and digests, sizes and hashes. A bundle is untrusted input: the reader runs this as it opens one, so
 * nothing downstream (the installer's temp folder, helm's arguments, the site server's routes and scripts) ever sees
 * a name that is not checked. The first bad value fails with E_INTEGRITY naming its field and the value.
 */
import { AirgapError } from '../errors.js'
import { checkFilePath, checkLabel, checkSha256, checkVersion, q } from '../spec/value-checks.js'
import { BUNDLE_JSON } from './layout.js'
import type { BundleMetadata } from './metadata.js'

/** A bad value: the field (JSON path in bundle.json) and what is wrong with it. */
export interface NameProblem {
  field: string
  problem: string
}

/** C0 control characters and DEL (NUL included): never in a name. */
const hasControl = (value: string): boolean =>
  [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
/** Chart names and versions become `<name>-<version>.tgz` and helm arguments: one safe file name segment each. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/
const MAX_SEGMENT = 128
const MAX_PATH = 4096
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/
const TAG = /^[\w][\w.-]{0,127}$/
const DIGEST = /^sha256:[a-f0-9]{64}$/

/** A relative member path: "/"-separated, no "..", "." or empty segments, not absolute, no control characters. */
export function checkMemberPath(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'expected text'
  if (value === '') return 'is empty'
  if (value.length > MAX_PATH) return `is ${value.length} characters long (at most ${MAX_PATH})`
  if (hasControl(value)) return `${q(value)} has a control character`
  return checkFilePath(value)
}

/** One file name segment (chart names and versions, package repository names). */
export function checkSegment(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'expected text'
  if (value.length > MAX_SEGMENT) return `is ${value.length} characters long (at most ${MAX_SEGMENT})`
  if (!SEGMENT.test(value))
    return `${q(value)} is not a safe name (letters, digits, ".", "_", "+" and "-", starting with a letter or digit)`
  return undefined
}

/** registry/repository as the bundle stores image names (docker.io/library/nginx). */
export function checkImageName(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'expected text'
  const slash = value.indexOf('/')
  if (slash <= 0) return `${q(value)} is not registry/repository`
  if (!HOST.test(value.slice(0, slash))) return `${q(value)} does not start with a registry host`
  const repository = value.slice(slash + 1)
  if (repository.length > 255 || !repository.split('/').every((c) => PATH_COMPONENT.test(c)))
    return `${q(value)} is not a valid repository name`
  return undefined
}

function text(check: (value: string) => string | undefined): (value: unknown) => string | undefined {
  return (value) => (typeof value === 'string' ? check(value) : 'expected text')
}

const checkSize = (value: unknown): string | undefined =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
    ? undefined
    : `${JSON.stringify(value)} is not a size in bytes`
const checkDigest = (value: unknown): string | undefined =>
  typeof value === 'string' && DIGEST.test(value)
    ? undefined
    : `${JSON.stringify(value)} is not a sha256 digest`
const checkTag = (value: unknown): string | undefined =>
  typeof value === 'string' && TAG.test(value) ? undefined : `${JSON.stringify(value)} is not a tag`
const checkPlainText = (value: unknown): string | undefined =>
  typeof value !== 'string'
    ? 'expected text'
    : hasControl(value)
      ? `${q(value)} has a control character`
      : undefined

/** Every problem in the names of bundle.json (empty when all are fine). Pure: the unit tests call it directly. */
export function bundleNameProblems(metadata: BundleMetadata): NameProblem[] {
  const problems: NameProblem[] = []
  const m = metadata as unknown as Record<string, unknown>
  const check = (field: string, value: unknown, checker: (v: unknown) => string | undefined) => {
    const problem = checker(value)
    if (problem) problems.push({ field, problem })
  }
  const optional = (field: string, value: unknown, checker: (v: unknown) => string | undefined) => {
    if (value !== undefined) check(field, value, checker)
  }
  const list = (field: string, value: unknown, each: (item: Record<string, unknown>, at: string) => void) => {
    if (value === undefined) return
    if (!Array.isArray(value)) {
      problems.push({ field, problem: 'expected a list' })
      return
    }
    value.forEach((item, i) => {
      if (item === null || typeof item !== 'object' || Array.isArray(item))
        problems.push({ field: `${field}[${i}]`, problem: 'expected an object' })
      else each(item as Record<string, unknown>, `${field}[${i}]`)
    })
  }

  check('name', m.name, text(checkLabel))
  check('version', m.version, text(checkVersion))
  if (m.base !== undefined) {
    const base = (m.base ?? {}) as Record<string, unknown>
    check('base.name', base.name, text(checkLabel))
    check('base.version', base.version, text(checkVersion))
    check('base.bundleJson', base.bundleJson, checkDigest)
  }
  if (!Array.isArray(m.members)) problems.push({ field: 'members', problem: 'required: a list' })
  list('members', m.members, (member, at) => {
    check(`${at}.path`, member.path, checkMemberPath)
    check(`${at}.size`, member.size, checkSize)
    check(`${at}.sha256`, member.sha256, text(checkSha256))
  })
  const seen = new Set<string>([BUNDLE_JSON])
  if (Array.isArray(m.members)) {
    m.members.forEach((member: { path?: unknown }, i) => {
      if (typeof member?.path !== 'string') return
      if (seen.has(member.path))
        problems.push({ field: `members[${i}].path`, problem: `${q(member.path)} is listed twice` })
      seen.add(member.path)
    })
  }
  list('images', m.images, (image, at) => {
    check(`${at}.name`, image.name, checkImageName)
    optional(`${at}.tag`, image.tag, checkTag)
    check(`${at}.digest`, image.digest, checkDigest)
    list(`${at}.manifests`, image.manifests, (manifest, where) => {
      check(`${where}.digest`, manifest.digest, checkDigest)
      check(`${where}.size`, manifest.size, checkSize)
    })
  })
  list('charts', m.charts, (chart, at) => {
    check(`${at}.name`, chart.name, checkSegment)
    check(`${at}.version`, chart.version, checkSegment)
    check(`${at}.path`, chart.path, checkMemberPath)
    const oci = chart.oci as Record<string, unknown> | undefined
    if (oci !== undefined) {
      check(
        `${at}.oci.repository`,
        oci?.repository,
        text((v) =>
          v.split('/').every((c) => !checkSegment(c)) ? undefined : `${q(v)} is not a repository`,
        ),
      )
      check(`${at}.oci.tag`, oci?.tag, checkTag)
      check(`${at}.oci.digest`, oci?.digest, checkDigest)
    }
  })
  list('files', m.files, (file, at) => {
    check(`${at}.path`, file.path, checkMemberPath)
    check(`${at}.size`, file.size, checkSize)
  })
  if (m.installer !== undefined && m.installer !== null) {
    const installer = m.installer as Record<string, unknown>
    check('installer.path', installer.path, checkMemberPath)
    check('installer.size', installer.size, checkSize)
  }
  list('packages', m.packages, (repository, at) => {
    check(`${at}.kind`, repository.kind, (v) =>
      v === 'apt' || v === 'rpm' ? undefined : `${JSON.stringify(v)} is not apt or rpm`,
    )
    check(`${at}.name`, repository.name, checkSegment)
    check(`${at}.path`, repository.path, checkMemberPath)
    if (Array.isArray(repository.metadata))
      for (const [i, p] of repository.metadata.entries()) check(`${at}.metadata[${i}]`, p, checkMemberPath)
    else optional(`${at}.metadata`, repository.metadata, () => 'expected a list')
    list(`${at}.packages`, repository.packages, (pkg, where) => {
      check(`${where}.path`, pkg.path, checkMemberPath)
      check(`${where}.name`, pkg.name, checkPlainText)
      check(`${where}.version`, pkg.version, checkPlainText)
      check(`${where}.size`, pkg.size, checkSize)
    })
  })
  list('stages', m.stages, (stage, at) => {
    check(`${at}.name`, stage.name, text(checkLabel))
    if (Array.isArray(stage.files))
      for (const [i, p] of stage.files.entries()) check(`${at}.files[${i}]`, p, checkMemberPath)
    else problems.push({ field: `${at}.files`, problem: 'required: a list' })
  })
  return problems
}

/** Throws E_INTEGRITY for the first bad name of bundle.json (`where` is the bundle's path, for the message). */
export function validateBundleNames(metadata: BundleMetadata, where: string): void {
  const problems = bundleNameProblems(metadata)
  if (!problems.length) return
  const first = problems[0]!
  throw new AirgapError(
    'E_INTEGRITY',
    `${BUNDLE_JSON} in ${where} is not safe to use: ${first.field}: ${first.problem}${problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''}.`,
    {
      hints: [
        'The bundle was altered or not written by astrago-airgap; nothing was read past bundle.json. Get the bundle again from its source.',
      ],
      data: { field: first.field, problems: problems.slice(0, 20) },
    },
  )
}
