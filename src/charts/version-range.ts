import { compareVersions, type ParsedVersion, parseVersion } from './version.js'

/**
 * Version constraints as Chart.yaml `dependencies[].version` writes them (Helm reads them with Masterminds semver):
 * `1.2.3`, `=`, `!=`, `>`, `>=`, `<`, `<=`, `~1.2`, `^1.2.3`, wildcards (`1.2.x`, `*`), hyphen ranges (`1.2 - 1.4`),
 * comma- or space-separated conditions that must all hold, and `||` between alternatives. As in Masterminds, a
 * prerelease version only satisfies a constraint that names a prerelease itself.
 */
type Check = (v: ParsedVersion) => boolean

export interface VersionRange {
  /** The constraint as written. */
  text: string
  /** Whether it names exactly one version (a plain or `=` version without wildcards). */
  exact: boolean
  satisfiedBy(version: string): boolean
}

/** Parses a constraint; undefined when it is not one Helm would accept. */
export function parseVersionRange(text: string): VersionRange | undefined {
  const alternatives: Check[][] = []
  let allowPrerelease = false
  let exact = false
  const groups = text.split('||').map((g) => g.trim())
  for (const group of groups) {
    const checks: Check[] = []
    const normalized = group.replace(/\s+-\s+/g, ' - ').replace(/([<>=!~^]+)\s+/g, '$1')
    const hyphen = /^(\S+) - (\S+)$/.exec(normalized)
    const terms = hyphen ? [] : normalized.split(/[\s,]+/).filter(Boolean)
    if (hyphen) {
      const low = partial(hyphen[1]!)
      const high = partial(hyphen[2]!)
      if (!low || !high) return undefined
      checks.push((v) => cmp(v, floor(low)) >= 0, upperBound(high))
    }
    if (!hyphen && terms.length === 0) terms.push('*')
    for (const term of terms) {
      const m = /^(=|!=|>=|<=|>|<|~>?|\^)?(.+)$/.exec(term)
      if (!m) return undefined
      const op = m[1] ?? ''
      const p = partial(m[2]!)
      if (!p) return undefined
      if (p.prerelease.length) allowPrerelease = true
      const check = toCheck(op, p)
      if (!check) return undefined
      checks.push(check)
      if (groups.length === 1 && terms.length === 1 && (op === '' || op === '=') && p.wild === 0) exact = true
    }
    alternatives.push(checks)
  }
  return {
    text,
    exact,
    satisfiedBy(version: string): boolean {
      const v = parseVersion(version)
      if (!v) return false
      if (v.prerelease.length && !allowPrerelease) return false
      return alternatives.some((checks) => checks.every((c) => c(v)))
    },
  }
}

/** The newest of `versions` that satisfies `range`, or undefined. */
export function newestSatisfying(range: VersionRange, versions: string[]): string | undefined {
  return [...versions].sort((a, b) => compareVersions(b, a)).find((v) => range.satisfiedBy(v))
}

/** A version whose trailing parts may be missing or wildcards; `wild` counts the parts left open (0..3). */
interface Partial extends ParsedVersion {
  wild: number
}

function partial(text: string): Partial | undefined {
  const t = text.replace(/^v(?=\d)/, '')
  if (/^[*xX]$/.test(t)) return { major: 0, minor: 0, patch: 0, prerelease: [], build: '', wild: 3 }
  const m = /^(\d+)(?:\.(\d+|[*xX]))?(?:\.(\d+|[*xX]))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.exec(t)
  if (!m) return undefined
  const parts = [m[1], m[2], m[3]]
  let wild = 0
  for (let i = 1; i < 3; i++)
    if (parts[i] === undefined || /^[*xX]$/.test(parts[i]!)) wild = Math.max(wild, 3 - i)
  const num = (s: string | undefined) => (s === undefined || /^[*xX]$/.test(s) ? 0 : Number(s))
  return {
    major: num(parts[0]),
    minor: num(parts[1]),
    patch: num(parts[2]),
    prerelease: m[4] ? m[4].slice(1).split('.') : [],
    build: '',
    wild,
  }
}

function cmp(a: ParsedVersion, b: ParsedVersion): number {
  const s = (v: ParsedVersion) =>
    `${v.major}.${v.minor}.${v.patch}${v.prerelease.length ? `-${v.prerelease.join('.')}` : ''}`
  return compareVersions(s(a), s(b))
}

function floor(p: Partial): ParsedVersion {
  return { major: p.major, minor: p.minor, patch: p.patch, prerelease: p.prerelease, build: '' }
}

/** The first version past a partial version's span: 1.2 → 1.3.0, 1 → 2.0.0, 1.2.3 → 1.2.4 (exclusive). */
function ceiling(p: Partial): ParsedVersion {
  if (p.wild >= 3) return { major: Number.MAX_SAFE_INTEGER, minor: 0, patch: 0, prerelease: [], build: '' }
  if (p.wild === 2) return { major: p.major + 1, minor: 0, patch: 0, prerelease: ['0'], build: '' }
  if (p.wild === 1) return { major: p.major, minor: p.minor + 1, patch: 0, prerelease: ['0'], build: '' }
  return { major: p.major, minor: p.minor, patch: p.patch, prerelease: p.prerelease, build: '' }
}

function upperBound(p: Partial): Check {
  const c = ceiling(p)
  return p.wild === 0 ? (v) => cmp(v, c) <= 0 : (v) => cmp(v, c) < 0
}

function toCheck(op: string, p: Partial): Check | undefined {
  const low = floor(p)
  const high = ceiling(p)
  switch (op) {
    case '':
    case '=':
      return p.wild === 0 ? (v) => cmp(v, low) === 0 : (v) => cmp(v, low) >= 0 && cmp(v, high) < 0
    case '!=':
      return p.wild === 0 ? (v) => cmp(v, low) !== 0 : (v) => cmp(v, low) < 0 || cmp(v, high) >= 0
    case '>':
      return p.wild === 0 ? (v) => cmp(v, low) > 0 : (v) => cmp(v, high) >= 0
    case '>=':
      return (v) => cmp(v, low) >= 0
    case '<':
      return (v) => cmp(v, low) < 0
    case '<=':
      return p.wild === 0 ? (v) => cmp(v, low) <= 0 : (v) => cmp(v, high) < 0
    case '~':
    case '~>': {
      // ~1.2.3 and ~1.2: >= it, < next minor; ~1: < next major.
      const next =
        p.wild >= 2
          ? { ...low, major: p.major + 1, minor: 0, patch: 0, prerelease: ['0'] }
          : { ...low, minor: p.minor + 1, patch: 0, prerelease: ['0'] }
      return (v) => cmp(v, low) >= 0 && cmp(v, next) < 0
    }
    case '^': {
      // ^1.2.3: < 2.0.0; ^0.2.3: < 0.3.0; ^0.0.3: < 0.0.4 (the first non-zero part is held).
      let next: ParsedVersion
      if (p.major > 0 || p.wild >= 2)
        next = { ...low, major: p.major + 1, minor: 0, patch: 0, prerelease: ['0'] }
      else if (p.minor > 0 || p.wild === 1) next = { ...low, minor: p.minor + 1, patch: 0, prerelease: ['0'] }
      else next = { ...low, patch: p.patch + 1, prerelease: ['0'] }
      return (v) => cmp(v, low) >= 0 && cmp(v, next) < 0
    }
    default:
      return undefined
  }
}
