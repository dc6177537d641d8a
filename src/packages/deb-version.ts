/**
 * Debian version comparison, exactly as dpkg does it (lib/dpkg/version.c: `dpkg_version_compare`, `verrevcmp`):
 * `[epoch:]upstream[-revision]`; the epoch compares as a number; upstream and revision compare by alternating
 * non-digit and digit runs, where in non-digit runs `~` sorts before everything (even the end of the string),
 * letters sort before non-letters, and digit runs compare as numbers.
 */
export interface DebVersion {
  epoch: number
  upstream: string
  revision: string
}

export function parseDebVersion(version: string): DebVersion {
  const text = version.trim()
  const colon = text.indexOf(':')
  let epoch = 0
  let rest = text
  if (colon >= 0) {
    epoch = Number.parseInt(text.slice(0, colon), 10)
    if (!Number.isFinite(epoch)) epoch = 0
    rest = text.slice(colon + 1)
  }
  const dash = rest.lastIndexOf('-')
  if (dash >= 0) return { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) }
  return { epoch, upstream: rest, revision: '' }
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57
}

function isLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122)
}

/** dpkg's `order()`: digits and the end of the string are 0, `~` is -1, letters their code, others code + 256. */
function order(code: number): number {
  if (Number.isNaN(code) || isDigit(code)) return 0
  if (isLetter(code)) return code
  if (code === 126) return -1
  return code + 256
}

function compareFragment(a: string, b: string): number {
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    let firstDiff = 0
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(a.charCodeAt(i))
      const bc = order(b.charCodeAt(j))
      if (ac !== bc) return ac - bc
      i++
      j++
    }
    while (a.charCodeAt(i) === 48) i++
    while (b.charCodeAt(j) === 48) j++
    while (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j)
      i++
      j++
    }
    if (isDigit(a.charCodeAt(i))) return 1
    if (isDigit(b.charCodeAt(j))) return -1
    if (firstDiff) return firstDiff
  }
  return 0
}

/** Negative, zero or positive as `a` sorts before, equal to or after `b` (dpkg --compare-versions). */
export function compareDebVersions(a: string, b: string): number {
  if (a === b) return 0
  const va = parseDebVersion(a)
  const vb = parseDebVersion(b)
  if (va.epoch !== vb.epoch) return va.epoch - vb.epoch
  const upstream = compareFragment(va.upstream, vb.upstream)
  if (upstream) return upstream
  return compareFragment(va.revision, vb.revision)
}

export type VersionOperator = '<<' | '<=' | '=' | '>=' | '>>'

/** Whether `version` satisfies `operator constraint` (`<` and `>` are dpkg's deprecated spellings of `<=`/`>=`). */
export function satisfiesDebVersion(version: string, operator: VersionOperator, constraint: string): boolean {
  const c = compareDebVersions(version, constraint)
  switch (operator) {
    case '<<':
      return c < 0
    case '<=':
      return c <= 0
    case '=':
      return c === 0
    case '>=':
      return c >= 0
    case '>>':
      return c > 0
  }
}
