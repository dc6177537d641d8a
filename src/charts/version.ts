/**
 * Chart versions as Helm reads them: Masterminds semver, lenient (an optional leading "v", minor and patch may be
 * missing). Used to match a requested version, to order versions newest first and to suggest close ones.
 */
export interface ParsedVersion {
  major: number
  minor: number
  patch: number
  prerelease: string[]
  build: string
}

const SEMVER =
  /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/

/** Parses a version the way Helm does; undefined when Helm would reject it as invalid semver. */
export function parseVersion(version: string): ParsedVersion | undefined {
  const m = SEMVER.exec(version.trim())
  if (!m) return undefined
  const num = (s: string | undefined) => (s === undefined ? 0 : Number(s))
  const major = num(m[1])
  const minor = num(m[2])
  const patch = num(m[3])
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined
  return { major, minor, patch, prerelease: m[4] ? m[4].split('.') : [], build: m[5] ?? '' }
}

export function isValidVersion(version: string): boolean {
  return parseVersion(version) !== undefined
}

function comparePrerelease(a: string[], b: string[]): number {
  // A release sorts after its prereleases.
  if (a.length === 0 || b.length === 0) return (a.length === 0 ? 1 : 0) - (b.length === 0 ? 1 : 0)
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i]
    const y = b[i]
    if (x === undefined) return -1
    if (y === undefined) return 1
    const xn = /^\d+$/.test(x)
    const yn = /^\d+$/.test(y)
    if (xn && yn) {
      const d = Number(x) - Number(y)
      if (d !== 0) return Math.sign(d)
    } else if (xn !== yn) {
      return xn ? -1 : 1
    } else if (x !== y) {
      return x < y ? -1 : 1
    }
  }
  return 0
}

/**
 * Orders two versions (negative: a is older). Valid semver sorts by precedence; invalid versions sort before every
 * valid one, by plain string order; ties are broken by the raw string so the order is total and deterministic.
 */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a)
  const pb = parseVersion(b)
  if (pa && pb) {
    const d =
      Math.sign(pa.major - pb.major) ||
      Math.sign(pa.minor - pb.minor) ||
      Math.sign(pa.patch - pb.patch) ||
      comparePrerelease(pa.prerelease, pb.prerelease)
    if (d !== 0) return d
  } else if (pa || pb) {
    return pa ? 1 : -1
  }
  return a === b ? 0 : a < b ? -1 : 1
}

/** Whether two version strings name the same chart version: equal, or equal but for a leading "v" (as Helm matches). */
export function sameVersion(a: string, b: string): boolean {
  if (a === b) return true
  return a.replace(/^v(?=\d)/, '') === b.replace(/^v(?=\d)/, '')
}

/**
 * The available versions closest to `wanted` (same major.minor first, then same major, then the rest, nearer
 * numbers first), at most `limit`, returned newest first. When `wanted` is not semver, the newest ones.
 */
export function closestVersions(wanted: string, available: string[], limit = 10): string[] {
  const unique = [...new Set(available)]
  const target = parseVersion(wanted)
  let picked: string[]
  if (!target) {
    picked = unique.sort((a, b) => compareVersions(b, a)).slice(0, limit)
  } else {
    const distance = (v: string): number[] => {
      const p = parseVersion(v)
      if (!p) return [Number.MAX_SAFE_INTEGER, 0, 0, 1]
      const dMajor = Math.abs(p.major - target.major)
      const dMinor = dMajor === 0 ? Math.abs(p.minor - target.minor) : 0
      const dPatch = dMajor === 0 && dMinor === 0 ? Math.abs(p.patch - target.patch) : 0
      // Prereleases are less likely to be what was meant.
      return [dMajor, dMinor, dPatch, p.prerelease.length > 0 ? 1 : 0]
    }
    const keyed = unique.map((v) => ({ v, d: distance(v) }))
    keyed.sort((x, y) => {
      for (let i = 0; i < x.d.length; i++) {
        const d = (x.d[i] ?? 0) - (y.d[i] ?? 0)
        if (d !== 0) return d
      }
      return compareVersions(y.v, x.v)
    })
    picked = keyed.slice(0, limit).map((k) => k.v)
  }
  return picked.sort((a, b) => compareVersions(b, a))
}
