import { AirgapError } from '../errors.js'
import { addToList, newerFirst, type RpmIndex } from './rpm-index.js'
import { type RpmDependency, type RpmPackage, rpmEvrOf, rpmNevra } from './rpm-package.js'
import { containsWithout, parseRichDependency, type Rich } from './rpm-rich-dependency.js'
import {
  formatRpmRequirement,
  parseRpmEvr,
  type RpmFlags,
  rpmEvrSatisfies,
  rpmOperator,
  rpmRangesOverlap,
} from './rpm-version.js'

/**
 * Dependency closure of a set of rpm packages, resolved the way `dnf install` does into a fresh root whose installed
 * packages (the baseline) are known:
 *
 * - architectures: the target's (the first of `architectures`), `noarch`, then the others listed (give `i686` after
 *   `x86_64` only when multilib packages are wanted); `src` and unlisted architectures are ignored. Among providers
 *   the requirer's own architecture is preferred, then that order;
 * - a request picks the newest version of its name (and architecture, `name.arch`), or the newest satisfying
 *   `name >= 1.2-3`; a request may also be a provide or a file path, as dnf accepts;
 * - Requires (`pre` ones included) are matched against Provides (versioned ranges as rpm compares them, the
 *   package's own `name = EVR` implied), file requires against the files primary.xml lists, falling back to the
 *   filelists paths added with `addRpmFileProviders`; `rpmlib(…)` requires are rpm's own and always satisfied;
 * - a dependency already satisfied by the baseline or a chosen package is left alone; a dependency with providers of
 *   one name only is decided at once, one with several names is decided after every unambiguous one (as libsolv's
 *   unit propagation does before its choices), preferring a package named like the dependency, then the first name
 *   in alphabetical order (libsolv's order after pruning); the newest version of that name wins;
 * - a name.arch is installed once (two versions of it cannot be chosen), except installonly packages (dnf's
 *   default installonlypkgs: kernel, and what provides installonlypkg(kernel) such as kernel-devel): requesting
 *   `kernel-devel = <one kernel>` and `kernel-devel = <another>` brings both;
 * - Conflicts (either way round) and Obsoletes (by package name and version) against the baseline packages and the
 *   chosen ones rule candidates out;
 * - rich (boolean) dependencies: `and`, `or` (unless one alternative is already satisfied, the providers of all
 *   plain alternatives are chosen from as one set, as libsolv does; with nested expressions, the first alternative
 *   that can be satisfied), `if` / `if … else`, `unless` / `unless … else` (the condition is evaluated against the
 *   closure, re-checked until nothing changes) and `with` (one package satisfying all operands). `without` is not
 *   supported and is reported as an error naming the package;
 * - weak dependencies (Recommends, Suggests, Supplements, Enhances) are not followed, as with
 *   `install_weak_deps=False`.
 *
 * The baseline is a list of names or provides assumed installed on the node (at whatever version: a versioned
 * requirement on them is taken as satisfied). A baseline entry that is a package of the index also brings that
 * package's provides and files. Baseline packages are not fetched unless requested explicitly.
 */

export interface RpmClosureOptions {
  index: RpmIndex
  /** `name`, `name.arch`, `name >= 1.2-3` (also `=`, `<`, `<=`, `>`), a provide, or a file path. */
  requests: string[]
  /** Names or provides assumed installed on the node. */
  baseline?: string[]
}

export interface RpmClosureResult {
  /** The packages to fetch, sorted by name and architecture. */
  packages: RpmPackage[]
  /** Baseline entries that are packages of the index (their provides and files were taken as installed). */
  baseline: RpmPackage[]
  /** `rpmPackageKey` (`name.arch`) → the dependency chain from a request, ending with the package itself. */
  reasons: Map<string, string[]>
}

/** dnf's default `installonlypkgs`: several versions of these are installed side by side (kernels). */
const INSTALLONLY_NAMES = new Set(['kernel', 'kernel-PAE'])
const INSTALLONLY_PROVIDES = new Set([
  'installonlypkg(kernel)',
  'installonlypkg(kernel-module)',
  'installonlypkg(vm)',
  'multiversion(kernel)',
])

export function isRpmInstallonly(pkg: RpmPackage): boolean {
  return INSTALLONLY_NAMES.has(pkg.name) || pkg.provides.some((p) => INSTALLONLY_PROVIDES.has(p.name))
}

/**
 * The key of a package in the closure (and in `reasons`): `name.arch`, or `name.arch-[epoch:]version-release` for
 * installonly packages, of which several versions can be chosen (kernel-devel for two kernels).
 */
export function rpmPackageKey(pkg: RpmPackage): string {
  return isRpmInstallonly(pkg)
    ? `${pkg.name}.${pkg.arch}-${pkg.epoch ? `${pkg.epoch}:` : ''}${pkg.version}-${pkg.release}`
    : `${pkg.name}.${pkg.arch}`
}

const keyOf = rpmPackageKey

interface Pending {
  dep: Rich
  chain: string[]
  /** The requirer (for its architecture). */
  from?: RpmPackage
  /** The text for messages. */
  text: string
}

class Resolver {
  readonly chosen = new Map<string, RpmPackage>()
  readonly reasons = new Map<string, string[]>()
  readonly installed = new Set<RpmPackage>()
  readonly assumed = new Set<string>()
  /** Packages installed (baseline and chosen), by provided name, for satisfaction, conflicts and obsoletes. */
  private readonly installedProvides = new Map<string, Array<{ pkg: RpmPackage; dep: RpmDependency }>>()
  private readonly installedConflicts = new Map<string, Array<{ pkg: RpmPackage; dep: RpmDependency }>>()
  private readonly installedObsoletes = new Map<string, Array<{ pkg: RpmPackage; dep: RpmDependency }>>()
  private readonly installedNames = new Map<string, RpmPackage[]>()
  readonly definite = new Queue<Pending>()
  readonly deferred = new Queue<Pending>()
  /** Dependencies found to have providers of several names: decided after the unambiguous ones. */
  private readonly ambiguous = new Set<string>()
  readonly conditional: Pending[] = []

  constructor(readonly index: RpmIndex) {}

  addInstalled(pkg: RpmPackage): void {
    if (this.installed.has(pkg)) return
    this.installed.add(pkg)
    addToList(this.installedNames, pkg.name, pkg)
    addToList(this.installedProvides, pkg.name, {
      pkg,
      dep: { name: pkg.name, flags: 'EQ', evr: rpmEvrOf(pkg) },
    })
    for (const dep of pkg.provides) addToList(this.installedProvides, dep.name, { pkg, dep })
    for (const dep of pkg.conflicts) addToList(this.installedConflicts, dep.name, { pkg, dep })
    for (const dep of pkg.obsoletes) addToList(this.installedObsoletes, dep.name, { pkg, dep })
  }

  /** Does `pkg` provide `dep` (a name with an optional range, or a file path)? */
  provides(pkg: RpmPackage, dep: RpmDependency): boolean {
    if (dep.name.startsWith('/')) {
      if (pkg.files.includes(dep.name)) return true
      if ((this.index.files.get(dep.name) ?? []).includes(pkg)) return true
    }
    if (pkg.name === dep.name && rpmEvrSatisfies(rpmEvrOf(pkg), dep)) return true
    return pkg.provides.some((p) => p.name === dep.name && rpmRangesOverlap(p, dep))
  }

  isSatisfied(dep: RpmDependency): boolean {
    if (dep.name.startsWith('rpmlib(')) return true
    if (this.assumed.has(dep.name)) return true
    for (const { dep: provide } of this.installedProvides.get(dep.name) ?? [])
      if (rpmRangesOverlap(provide, dep)) return true
    if (dep.name.startsWith('/'))
      for (const pkg of this.index.files.get(dep.name) ?? []) if (this.installed.has(pkg)) return true
    return false
  }

  richSatisfied(rich: Rich): boolean {
    switch (rich.op) {
      case 'dep':
        return this.isSatisfied(rich.dep)
      case 'and':
        return rich.args.every((a) => this.richSatisfied(a))
      case 'or':
        return rich.args.some((a) => this.richSatisfied(a))
      case 'with':
        return [...this.installed].some((pkg) =>
          rich.args.every((a) => a.op === 'dep' && this.provides(pkg, a.dep)),
        )
      case 'without':
        return false
      case 'if':
        return this.richSatisfied(rich.cond)
          ? this.richSatisfied(rich.consequence)
          : rich.otherwise
            ? this.richSatisfied(rich.otherwise)
            : true
      case 'unless':
        return !this.richSatisfied(rich.cond)
          ? this.richSatisfied(rich.consequence)
          : rich.otherwise
            ? this.richSatisfied(rich.otherwise)
            : true
    }
  }

  /** Why `pkg` cannot join the installed set, or undefined. */
  conflictOf(pkg: RpmPackage): string | undefined {
    const same = this.chosen.get(keyOf(pkg))
    if (same && same !== pkg) return `${rpmNevra(same)} is already chosen`
    for (const dep of pkg.conflicts)
      for (const { pkg: other, dep: provide } of this.installedProvides.get(dep.name) ?? [])
        if (other !== pkg && rpmRangesOverlap(provide, dep))
          return `${rpmNevra(pkg)} conflicts with ${formatRpmRequirement(dep)} provided by ${rpmNevra(other)}`
    const own = [{ name: pkg.name, flags: 'EQ' as RpmFlags, evr: rpmEvrOf(pkg) }, ...pkg.provides]
    for (const provide of own)
      for (const { pkg: other, dep } of this.installedConflicts.get(provide.name) ?? [])
        if (other !== pkg && rpmRangesOverlap(provide, dep))
          return `${rpmNevra(other)} conflicts with ${formatRpmRequirement(dep)}`
    for (const { pkg: other, dep } of this.installedObsoletes.get(pkg.name) ?? [])
      if (other !== pkg && other.name !== pkg.name && rpmEvrSatisfies(rpmEvrOf(pkg), dep))
        return `${rpmNevra(other)} obsoletes ${formatRpmRequirement(dep)}`
    for (const dep of pkg.obsoletes)
      for (const other of this.installedNames.get(dep.name) ?? [])
        if (
          other.name !== pkg.name &&
          this.chosen.get(keyOf(other)) === other &&
          rpmEvrSatisfies(rpmEvrOf(other), dep)
        )
          return `${rpmNevra(pkg)} obsoletes ${rpmNevra(other)}, which is already chosen`
    return undefined
  }

  /** Every package of the index that provides `dep`, newest first within a name. */
  candidates(dep: RpmDependency): RpmPackage[] {
    const found = new Set<RpmPackage>()
    for (const pkg of this.index.byName.get(dep.name) ?? [])
      if (rpmEvrSatisfies(rpmEvrOf(pkg), dep)) found.add(pkg)
    for (const { pkg, dep: provide } of this.index.provides.get(dep.name) ?? [])
      if (rpmRangesOverlap(provide, dep)) found.add(pkg)
    if (dep.name.startsWith('/')) for (const pkg of this.index.files.get(dep.name) ?? []) found.add(pkg)
    return [...found]
  }

  private archRank(pkg: RpmPackage, from?: RpmPackage): number {
    if (from && from.arch !== 'noarch' && pkg.arch === from.arch) return -1
    const rank = this.index.architectures.indexOf(pkg.arch)
    return rank < 0 ? this.index.architectures.length : rank
  }

  /**
   * The installable candidates of `dep`, best first, one per name (its best architecture, then newest version),
   * and the reasons the others were ruled out.
   */
  choices(dep: RpmDependency, from?: RpmPackage): { best: RpmPackage[]; excluded: string[] } {
    const excluded: string[] = []
    const byName = new Map<string, RpmPackage>()
    const all = this.candidates(dep).sort(
      (a, b) => this.archRank(a, from) - this.archRank(b, from) || newerFirst(a, b),
    )
    for (const pkg of all) {
      if (byName.has(pkg.name)) continue
      const conflict = this.conflictOf(pkg)
      if (conflict) {
        excluded.push(conflict)
        continue
      }
      byName.set(pkg.name, pkg)
    }
    return { best: this.policy([...byName.values()], dep.name), excluded }
  }

  /**
   * libsolv's choice among providers of different names: packages of an architecture worse than the best one among
   * them are dropped (noarch is never dropped), then a package named like the dependency, then by name.
   */
  policy(candidates: RpmPackage[], depName?: string): RpmPackage[] {
    const ranks = candidates.filter((p) => p.arch !== 'noarch').map((p) => this.archRank(p))
    const bestRank = ranks.length ? Math.min(...ranks) : 0
    return candidates
      .filter((p) => p.arch === 'noarch' || this.archRank(p) === bestRank)
      .sort(
        (a, b) =>
          Number(b.name === depName) - Number(a.name === depName) ||
          (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
      )
  }

  fail(chain: string[], text: string, why: string): never {
    throw new AirgapError('E_INPUT', `cannot install ${chain[0]}: ${[...chain].join(' → ')}: ${why}`, {
      data: { package: chain[0], chain, dependency: text, reason: why },
      hints: [
        'Check the package names and the repositories of the rpm source, or add what the nodes already have to the baseline.',
      ],
    })
  }

  install(pkg: RpmPackage, chain: string[]): void {
    const key = keyOf(pkg)
    if (this.chosen.has(key)) return
    this.chosen.set(key, pkg)
    const reason = [...chain, pkg.name]
    this.reasons.set(key, reason)
    this.addInstalled(pkg)
    for (const dep of pkg.requires) {
      const text = formatRpmRequirement(dep)
      if (dep.name.startsWith('(')) {
        const rich = parseRichDependency(dep.name)
        if (rich.op === 'without' || containsWithout(rich))
          this.fail(reason, text, `rich dependencies with "without" are not supported (${dep.name})`)
        const pending = { dep: rich, chain: reason, from: pkg, text: dep.name }
        if (rich.op === 'if' || rich.op === 'unless') this.conditional.push(pending)
        else this.deferred.push(pending)
        continue
      }
      this.definite.push({ dep: { op: 'dep', dep }, chain: reason, from: pkg, text })
    }
  }

  /** Makes a plain dependency true; `ambiguousLater` defers a choice between several names. */
  resolveDep(pending: Pending, dep: RpmDependency, ambiguousLater: boolean): boolean {
    if (this.isSatisfied(dep)) return true
    if (pending.from && this.provides(pending.from, dep)) return true
    const key = ambiguousLater ? `${pending.from?.arch ?? ''} ${formatRpmRequirement(dep)}` : ''
    if (ambiguousLater && this.ambiguous.has(key)) return false
    const { best, excluded } = this.choices(dep, pending.from)
    if (!best.length) {
      const what = formatRpmRequirement(dep)
      this.fail(
        pending.chain,
        what,
        excluded.length
          ? `nothing installable provides ${what} (${excluded.join('; ')})`
          : `nothing provides ${what}`,
      )
    }
    if (best.length > 1 && ambiguousLater) {
      this.ambiguous.add(key)
      return false
    }
    this.install(best[0]!, pending.chain)
    return true
  }

  /** Whether a rich dependency can be made true (some provider exists) without installing anything. */
  private possible(rich: Rich, from?: RpmPackage): boolean {
    if (this.richSatisfied(rich)) return true
    switch (rich.op) {
      case 'dep':
        return this.choices(rich.dep, from).best.length > 0
      case 'and':
      case 'with':
        return rich.args.every((a) => this.possible(a, from))
      case 'or':
        return rich.args.some((a) => this.possible(a, from))
      default:
        return true
    }
  }

  resolveRich(pending: Pending, rich: Rich): void {
    if (this.richSatisfied(rich)) return
    switch (rich.op) {
      case 'dep':
        this.resolveDep(pending, rich.dep, false)
        return
      case 'and':
        for (const arg of rich.args) this.resolveRich(pending, arg)
        return
      case 'or': {
        // As libsolv: plain alternatives are one set of providers, chosen by the same policy as for a virtual name
        // (dnf installs aa-a for `(zz-b or aa-a)`); with nested expressions, the first one that can be satisfied.
        if (rich.args.every((a) => a.op === 'dep')) {
          const providers = new Set<RpmPackage>()
          for (const arg of rich.args)
            if (arg.op === 'dep') for (const p of this.choices(arg.dep, pending.from).best) providers.add(p)
          const pkg = this.policy([...providers])[0]
          if (!pkg) this.fail(pending.chain, pending.text, `nothing provides any of ${pending.text}`)
          this.install(pkg, pending.chain)
          return
        }
        const pick = rich.args.find((a) => this.possible(a, pending.from))
        if (!pick) this.fail(pending.chain, pending.text, `nothing provides any of ${pending.text}`)
        this.resolveRich(pending, pick)
        return
      }
      case 'with': {
        const deps = rich.args.map((a) => (a.op === 'dep' ? a.dep : undefined))
        if (deps.some((d) => !d))
          this.fail(
            pending.chain,
            pending.text,
            `only simple operands are supported with "with" (${pending.text})`,
          )
        const first = deps[0]!
        const pkg = this.candidates(first)
          .filter((p) => deps.every((d) => this.provides(p, d!)) && !this.conflictOf(p))
          .sort(
            (a, b) => this.archRank(a, pending.from) - this.archRank(b, pending.from) || newerFirst(a, b),
          )[0]
        if (!pkg) this.fail(pending.chain, pending.text, `nothing provides ${pending.text}`)
        this.install(pkg, pending.chain)
        return
      }
      case 'without':
        this.fail(pending.chain, pending.text, `rich dependencies with "without" are not supported`)
        return
      case 'if':
        if (this.richSatisfied(rich.cond)) this.resolveRich(pending, rich.consequence)
        else if (rich.otherwise) this.resolveRich(pending, rich.otherwise)
        return
      case 'unless':
        if (!this.richSatisfied(rich.cond)) this.resolveRich(pending, rich.consequence)
        else if (rich.otherwise) this.resolveRich(pending, rich.otherwise)
        return
    }
  }

  /** Runs until every dependency of every chosen package is satisfied. */
  run(): void {
    for (;;) {
      let progressed = false
      for (let pending = this.definite.shift(); pending; pending = this.definite.shift()) {
        if (pending.dep.op !== 'dep') continue
        if (!this.resolveDep(pending, pending.dep.dep, true)) this.deferred.push(pending)
      }
      const next = this.deferred.shift()
      if (next) {
        if (next.dep.op === 'dep') this.resolveDep(next, next.dep.dep, false)
        else this.resolveRich(next, next.dep)
        continue
      }
      // Conditionals: re-evaluated against the closure until nothing changes.
      const before = this.chosen.size
      for (const pending of this.conditional) this.resolveRich(pending, pending.dep)
      if (this.chosen.size !== before || this.definite.size || this.deferred.size) progressed = true
      if (!progressed) return
    }
  }
}

/** A FIFO queue with O(1) shift. */
class Queue<T> {
  private items: T[] = []
  private head = 0

  push(item: T): void {
    this.items.push(item)
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head++]
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  get size(): number {
    return this.items.length - this.head
  }
}
/** Parses a request into a dependency, resolving `name.arch`. */
function parseRequest(index: RpmIndex, request: string): { dep: RpmDependency; arch?: string } {
  const match = /^\s*([^\s<>=]+)\s*(?:(<=|>=|==|=|<|>)\s*(\S+))?\s*$/.exec(request)
  if (!match) throw new AirgapError('E_INPUT', `cannot parse the rpm package request "${request}"`)
  let name = match[1]!
  let arch: string | undefined
  const dot = name.lastIndexOf('.')
  if (!index.byName.has(name) && !index.provides.has(name) && dot > 0) {
    const suffix = name.slice(dot + 1)
    if (
      index.architectures.includes(suffix) ||
      ['x86_64', 'aarch64', 'i686', 'ppc64le', 's390x'].includes(suffix)
    ) {
      arch = suffix
      name = name.slice(0, dot)
    }
  }
  const dep: RpmDependency = { name }
  if (match[2] && match[3]) {
    dep.flags = rpmOperator(match[2])!
    dep.evr = parseRpmEvr(match[3])
  }
  return arch ? { dep, arch } : { dep }
}

export function resolveRpmClosure(options: RpmClosureOptions): RpmClosureResult {
  const { index } = options
  const resolver: Resolver = new Resolver(index)
  const baseline: RpmPackage[] = []
  for (const entry of options.baseline ?? []) {
    resolver.assumed.add(entry)
    const list = index.byName.get(entry)
    if (!list?.length) continue
    const pkg = [...list].sort(
      (a, b) => index.architectures.indexOf(a.arch) - index.architectures.indexOf(b.arch) || newerFirst(a, b),
    )[0]!
    resolver.addInstalled(pkg)
    baseline.push(pkg)
  }
  for (const request of options.requests) {
    const { dep, arch } = parseRequest(index, request)
    let found = resolver.candidates(dep).filter((pkg) => !arch || pkg.arch === arch)
    // Prefer packages of that very name (a request names a package first, a provide second).
    const named = found.filter((pkg) => pkg.name === dep.name)
    if (named.length) found = named
    if (!found.length)
      throw new AirgapError(
        'E_INPUT',
        `cannot install ${request}: no package ${arch ? `of architecture ${arch} ` : ''}provides ${formatRpmRequirement(dep)}`,
        {
          data: { package: request, chain: [request], reason: 'no such package' },
          hints: ['Check the package name and the rpm source (baseurl, architectures).'],
        },
      )
    const pending: Pending = { dep: { op: 'dep', dep }, chain: [], text: request }
    const ranked = found
      .filter((pkg) => !resolver.conflictOf(pkg))
      .sort(
        (a, b) =>
          (index.architectures.indexOf(a.arch) + 1 || 99) - (index.architectures.indexOf(b.arch) + 1 || 99) ||
          (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
          newerFirst(a, b),
      )
    const pkg = ranked[0]
    if (!pkg)
      resolver.fail(
        [request],
        request,
        `every candidate conflicts (${found.map((p) => resolver.conflictOf(p)).join('; ')})`,
      )
    if (!resolver.chosen.has(keyOf(pkg))) resolver.install(pkg, pending.chain)
  }
  resolver.run()
  const packages = [...resolver.chosen.values()].sort((a, b) => {
    const ka = keyOf(a)
    const kb = keyOf(b)
    return ka < kb ? -1 : ka > kb ? 1 : 0
  })
  return { packages, baseline, reasons: resolver.reasons }
}
