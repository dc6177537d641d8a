/**
 * rpm version comparison, as rpm does it (rpmio/rpmvercmp.c `rpmvercmp`, lib/rpmds.c `rpmdsCompare`):
 *
 * - a version string is split into alternating alphabetic and numeric segments, everything else separates them;
 *   numeric segments compare as numbers (leading zeros ignored) and are newer than alphabetic ones; alphabetic ones
 *   compare as strings (ASCII); the string with segments left over is newer;
 * - `~` sorts before everything, even the end of the string (`1.0~rc1` < `1.0`);
 * - `^` sorts after the end of the string but before any other segment (`1.0` < `1.0^git1` < `1.0.1`);
 * - `[epoch:]version[-release]`: the epoch compares as a number (missing = 0), then the version, then the release
 *   only when both sides have one (a requirement `foo >= 1.2` matches every release of 1.2).
 */

export interface RpmEvr {
  epoch: number
  version: string
  /** Empty when not given. */
  release: string
}

export type RpmFlags = 'EQ' | 'LT' | 'LE' | 'GT' | 'GE'

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9'
}

function isAlpha(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

function isAlnum(c: string): boolean {
  return isDigit(c) || isAlpha(c)
}

/** rpmvercmp: -1, 0 or 1. */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]!) && a[i] !== '~' && a[i] !== '^') i++
    while (j < b.length && !isAlnum(b[j]!) && b[j] !== '~' && b[j] !== '^') j++
    const ca = a[i] ?? ''
    const cb = b[j] ?? ''
    if (ca === '~' || cb === '~') {
      if (ca !== '~') return 1
      if (cb !== '~') return -1
      i++
      j++
      continue
    }
    if (ca === '^' || cb === '^') {
      if (!ca) return -1
      if (!cb) return 1
      if (ca !== '^') return 1
      if (cb !== '^') return -1
      i++
      j++
      continue
    }
    if (!(ca && cb)) break
    let ei = i
    let ej = j
    const numeric = isDigit(ca)
    const test = numeric ? isDigit : isAlpha
    while (ei < a.length && test(a[ei]!)) ei++
    while (ej < b.length && test(b[ej]!)) ej++
    // The other side has a segment of the other type: numeric is newer.
    if (ej === j) return numeric ? 1 : -1
    let sa = a.slice(i, ei)
    let sb = b.slice(j, ej)
    if (numeric) {
      sa = sa.replace(/^0+/, '')
      sb = sb.replace(/^0+/, '')
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1
    }
    if (sa !== sb) return sa < sb ? -1 : 1
    i = ei
    j = ej
  }
  if (i >= a.length && j >= b.length) return 0
  return i < a.length ? 1 : -1
}

/** Parses `[epoch:]version[-release]` (the release is what follows the last `-`). */
export function parseRpmEvr(text: string): RpmEvr {
  const trimmed = text.trim()
  const colon = trimmed.indexOf(':')
  let epoch = 0
  let rest = trimmed
  if (colon >= 0 && /^\d*$/.test(trimmed.slice(0, colon))) {
    epoch = Number(trimmed.slice(0, colon) || '0')
    rest = trimmed.slice(colon + 1)
  }
  const dash = rest.lastIndexOf('-')
  if (dash >= 0) return { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) }
  return { epoch, version: rest, release: '' }
}

export function formatRpmEvr(evr: RpmEvr, showZeroEpoch = false): string {
  return `${evr.epoch || showZeroEpoch ? `${evr.epoch}:` : ''}${evr.version}${evr.release ? `-${evr.release}` : ''}`
}

/**
 * Compares two EVRs as rpm does for dependencies: epoch, version, then release only if both have one.
 * (For ordering packages, which always have a release, this is the full comparison.)
 */
export function compareRpmEvr(a: RpmEvr | string, b: RpmEvr | string): number {
  const x = typeof a === 'string' ? parseRpmEvr(a) : a
  const y = typeof b === 'string' ? parseRpmEvr(b) : b
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1
  const v = rpmvercmp(x.version, y.version)
  if (v) return v
  if (x.release && y.release) return rpmvercmp(x.release, y.release)
  return 0
}

/** A versioned range as in primary.xml: `flags` with an EVR, or no flags (any version). */
export interface RpmRange {
  flags?: RpmFlags | undefined
  evr?: RpmEvr | undefined
}

const LESS = new Set<RpmFlags>(['LT', 'LE'])
const GREATER = new Set<RpmFlags>(['GT', 'GE'])
const EQUAL = new Set<RpmFlags>(['EQ', 'LE', 'GE'])

/**
 * Whether two ranges overlap (rpmdsCompare): a Provides `foo = 1.2-3` and a Requires `foo >= 1.2` overlap. An
 * unversioned side overlaps everything.
 */
export function rpmRangesOverlap(a: RpmRange, b: RpmRange): boolean {
  if (!a.flags || !b.flags || !a.evr || !b.evr) return true
  const sense = compareRpmEvr(a.evr, b.evr)
  if (sense < 0) return GREATER.has(a.flags) || LESS.has(b.flags)
  if (sense > 0) return LESS.has(a.flags) || GREATER.has(b.flags)
  return (
    (EQUAL.has(a.flags) && EQUAL.has(b.flags)) ||
    (LESS.has(a.flags) && LESS.has(b.flags)) ||
    (GREATER.has(a.flags) && GREATER.has(b.flags))
  )
}

/** Whether a package's own EVR satisfies a range (`EQ` with its full EVR against the range). */
export function rpmEvrSatisfies(evr: RpmEvr, range: RpmRange): boolean {
  return rpmRangesOverlap({ flags: 'EQ', evr }, range)
}

const OPERATORS: Record<string, RpmFlags> = {
  '=': 'EQ',
  '==': 'EQ',
  '<': 'LT',
  '<=': 'LE',
  '>': 'GT',
  '>=': 'GE',
}
const SYMBOLS: Record<RpmFlags, string> = { EQ: '=', LT: '<', LE: '<=', GT: '>', GE: '>=' }

export function rpmOperator(symbol: string): RpmFlags | undefined {
  return OPERATORS[symbol]
}

export function rpmFlagSymbol(flags: RpmFlags): string {
  return SYMBOLS[flags]
}

/** Parses `name`, `name >= 1.2-3`, `name = 1:2.0`. */
export function parseRpmRequirement(text: string): { name: string } & RpmRange {
  const match = /^\s*([^\s<>=]+)\s*(?:(<=|>=|==|=|<|>)\s*(\S+))?\s*$/.exec(text)
  if (!match) return { name: text.trim() }
  const [, name, op, evr] = match
  if (!op || !evr) return { name: name! }
  return { name: name!, flags: OPERATORS[op]!, evr: parseRpmEvr(evr) }
}

export function formatRpmRequirement(dep: { name: string } & RpmRange): string {
  if (!dep.flags || !dep.evr) return dep.name
  return `${dep.name} ${SYMBOLS[dep.flags]} ${formatRpmEvr(dep.evr)}`
}
