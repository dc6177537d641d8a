import { AirgapError } from '../errors.js'
import {
  type AptPackage,
  formatRelation,
  parseRelation,
  parseRelations,
  type Relation,
  type RelationGroup,
} from './apt-index.js'
import { compareDebVersions, satisfiesDebVersion } from './deb-version.js'

/**
 * Dependency closure of a set of apt packages, resolved the way `apt-get install` does for a target whose installed
 * packages (the baseline) are known:
 *
 * - only the candidate of each package (its highest version in the index, per architecture) is installable, as apt
 *   with equal pins;
 * - Pre-Depends then Depends are followed depth-first; a dependency already satisfied by an installed or already
 *   chosen package is left alone, otherwise the first alternative with a satisfying candidate that conflicts with
 *   nothing installed is chosen (`a | b`);
 * - virtual packages are satisfied through Provides (a versioned dependency only by a versioned Provides); among
 *   several providers the one of the native architecture, then Essential, then the higher Priority, then the first
 *   by name is chosen (apt's provider order, made deterministic);
 * - Multi-Arch: `pkg:any` is satisfied only by a `Multi-Arch: allowed` package (or a `foreign` provider); an
 *   unqualified dependency by a package of the depender's architecture, of `all`, or `Multi-Arch: foreign`;
 *   `Architecture: all` packages depend as the native architecture;
 * - Conflicts and Breaks (against installed or chosen packages, either way round) rule out candidates;
 * - Recommends and Suggests are not followed (install with `--no-install-recommends` semantics; apt skips missing
 *   Recommends silently).
 *
 * Baseline packages are assumed installed at their index version: their own dependencies are not followed (they are
 * satisfied on the target) and they are not fetched, unless a versioned dependency needs a newer candidate, which is
 * then fetched as an upgrade.
 */

export interface AptIndex {
  /** Candidates (highest version) by package name, one per architecture. */
  candidates: Map<string, AptPackage[]>
  /** Every version in the index by package name (an explicit `name=version` request may pick any of them). */
  versions: Map<string, AptPackage[]>
  /** Providers among the candidates, by provided name. */
  providers: Map<string, Provider[]>
  architecture: string
  architectures: string[]
}

interface Provider {
  pkg: AptPackage
  relation: Relation
}

export interface BuildAptIndexOptions {
  /** The native architecture of the target (e.g. amd64). */
  architecture: string
  /** Foreign architectures enabled on the target (dpkg --add-architecture); their packages are kept too. */
  foreignArchitectures?: string[]
}

/** Keeps the candidate of each package name and architecture, and indexes Provides. */
export function buildAptIndex(packages: Iterable<AptPackage>, options: BuildAptIndexOptions): AptIndex {
  const architectures = [options.architecture, ...(options.foreignArchitectures ?? [])]
  const wanted = new Set([...architectures, 'all'])
  const candidates = new Map<string, AptPackage[]>()
  const versions = new Map<string, AptPackage[]>()
  for (const pkg of packages) {
    if (!wanted.has(pkg.architecture)) continue
    const all = versions.get(pkg.package)
    if (all) all.push(pkg)
    else versions.set(pkg.package, [pkg])
    const list = candidates.get(pkg.package)
    if (!list) {
      candidates.set(pkg.package, [pkg])
      continue
    }
    const same = list.findIndex((other) => other.architecture === pkg.architecture)
    if (same < 0) list.push(pkg)
    else if (compareDebVersions(pkg.version, list[same]!.version) > 0) list[same] = pkg
  }
  const providers = new Map<string, Provider[]>()
  for (const list of candidates.values()) {
    for (const pkg of list) {
      if (!pkg.provides) continue
      for (const group of parseRelations(pkg.provides)) {
        for (const relation of group) {
          const entry = providers.get(relation.name)
          if (entry) entry.push({ pkg, relation })
          else providers.set(relation.name, [{ pkg, relation }])
        }
      }
    }
  }
  return { candidates, versions, providers, architecture: options.architecture, architectures }
}

export interface AptBaseline {
  /** Every candidate with one of these priorities is installed (e.g. `['required']`, as debootstrap minbase). */
  priorities?: string[]
  /** Packages installed besides (e.g. `apt`, which minbase adds), resolved with their dependencies. */
  packages?: string[]
  /**
   * Exactly these packages are installed (e.g. from `dpkg-query -W` on a target); no dependency is followed. Give
   * `provides` (dpkg's `${Provides}`) and `multiArch` for packages the index does not hold at that version, or the
   * virtual packages they provide (sysvinit-utils provides lsb-base…) are not known.
   */
  installed?: Array<{
    package: string
    version?: string
    architecture?: string
    provides?: string
    multiArch?: AptPackage['multiArch']
  }>
}

export interface AptClosureOptions {
  index: AptIndex
  /** What to install: `name`, `name:arch`, `name=version` or `name (>= version)`. */
  requests: string[]
  baseline?: AptBaseline
}

export interface AptClosureResult {
  /** The packages to fetch (not in the baseline, or upgraded), sorted by name and architecture. */
  packages: AptPackage[]
  /** The installed set assumed on the target. */
  baseline: AptPackage[]
  /** Why each fetched package is there: `name:arch` → the chain from a request, e.g. `['nfs-common', 'libtirpc3']`. */
  reasons: Map<string, string[]>
}

const PRIORITY_RANK: Record<string, number> = {
  required: 0,
  important: 1,
  standard: 2,
  optional: 3,
  extra: 4,
}

function keyOf(pkg: AptPackage): string {
  return `${pkg.package}:${pkg.architecture}`
}

interface ParsedRelations {
  depends: RelationGroup[]
  conflicts: Relation[]
  provides: Relation[]
}

class Resolver {
  /** Installed or chosen packages, by name. */
  private readonly installed = new Map<string, AptPackage[]>()
  /** Provided names of installed or chosen packages. */
  private readonly installedProvides = new Map<string, Provider[]>()
  /** Conflicts and Breaks of installed or chosen packages, by the name they target. */
  private readonly conflictsOn = new Map<string, Array<{ from: AptPackage; relation: Relation }>>()
  private readonly parsed = new WeakMap<AptPackage, ParsedRelations>()
  readonly chosen = new Map<string, AptPackage>()
  readonly reasons = new Map<string, string[]>()

  constructor(readonly index: AptIndex) {}

  relationsOf(pkg: AptPackage): ParsedRelations {
    let parsed = this.parsed.get(pkg)
    if (!parsed) {
      parsed = {
        depends: [...parseRelations(pkg.preDepends), ...parseRelations(pkg.depends)],
        conflicts: [...parseRelations(pkg.conflicts), ...parseRelations(pkg.breaks)].flat(),
        provides: parseRelations(pkg.provides).flat(),
      }
      this.parsed.set(pkg, parsed)
    }
    return parsed
  }

  /** The architecture a package's dependencies are resolved for. */
  private dependerArch(pkg: AptPackage | undefined): string {
    return !pkg || pkg.architecture === 'all' ? this.index.architecture : pkg.architecture
  }

  private archMatches(pkg: AptPackage, relation: Relation, fromArch: string, provided: boolean): boolean {
    const q = relation.archQualifier
    if (q === 'any') return pkg.multiArch === 'allowed' || (provided && pkg.multiArch === 'foreign')
    if (q === 'native') return pkg.architecture === this.index.architecture || pkg.architecture === 'all'
    if (q) return pkg.architecture === q
    return pkg.architecture === fromArch || pkg.architecture === 'all' || pkg.multiArch === 'foreign'
  }

  private realSatisfies(pkg: AptPackage, relation: Relation, fromArch: string): boolean {
    if (pkg.package !== relation.name || !this.archMatches(pkg, relation, fromArch, false)) return false
    return !relation.operator || satisfiesDebVersion(pkg.version, relation.operator, relation.version!)
  }

  private providerSatisfies(provider: Provider, relation: Relation, fromArch: string): boolean {
    if (!this.archMatches(provider.pkg, relation, fromArch, true)) return false
    if (!relation.operator) return true
    const provided = provider.relation
    return (
      provided.operator === '=' &&
      satisfiesDebVersion(provided.version!, relation.operator, relation.version!)
    )
  }

  private installedSatisfies(relation: Relation, fromArch: string): boolean {
    for (const pkg of this.installed.get(relation.name) ?? [])
      if (this.realSatisfies(pkg, relation, fromArch)) return true
    for (const provider of this.installedProvides.get(relation.name) ?? [])
      if (this.providerSatisfies(provider, relation, fromArch)) return true
    return false
  }

  /** Installable candidates for one alternative: the real package first, then providers in apt's order. */
  candidatesFor(relation: Relation, fromArch: string): { found: AptPackage[]; why: string } {
    const found: AptPackage[] = []
    const real = this.index.candidates.get(relation.name) ?? []
    for (const pkg of real) if (this.realSatisfies(pkg, relation, fromArch)) found.push(pkg)
    const providers = (this.index.providers.get(relation.name) ?? []).filter((p) =>
      this.providerSatisfies(p, relation, fromArch),
    )
    providers.sort((a, b) => {
      const native = Number(b.pkg.architecture === fromArch) - Number(a.pkg.architecture === fromArch)
      if (native) return native
      const essential = Number(b.pkg.essential) - Number(a.pkg.essential)
      if (essential) return essential
      const rank = (PRIORITY_RANK[a.pkg.priority ?? ''] ?? 5) - (PRIORITY_RANK[b.pkg.priority ?? ''] ?? 5)
      if (rank) return rank
      return a.pkg.package < b.pkg.package ? -1 : a.pkg.package > b.pkg.package ? 1 : 0
    })
    for (const provider of providers) if (!found.includes(provider.pkg)) found.push(provider.pkg)
    let why = ''
    if (!found.length) {
      if (real.length)
        why = `${formatRelation(relation)}: the candidate is ${real.map((p) => `${p.version} (${p.architecture}, Multi-Arch: ${p.multiArch})`).join(', ')}`
      else if (this.index.providers.has(relation.name))
        why = `${formatRelation(relation)}: no provider satisfies it (provided by ${(this.index.providers.get(relation.name) ?? []).map((p) => `${formatRelation(p.relation)} from ${p.pkg.package}`).join(', ')})`
      else why = `${formatRelation(relation)}: no such package`
    }
    return { found, why }
  }

  /** The installed or chosen package that `pkg` would conflict with, if any. */
  conflictOf(pkg: AptPackage): string | undefined {
    const fromArch = this.dependerArch(pkg)
    const { conflicts, provides } = this.relationsOf(pkg)
    for (const relation of conflicts) {
      for (const other of this.installed.get(relation.name) ?? []) {
        if (other.package === pkg.package) continue
        if (!relation.operator || satisfiesDebVersion(other.version, relation.operator, relation.version!))
          return `${pkg.package} conflicts with ${other.package} ${other.version}`
      }
      for (const provider of this.installedProvides.get(relation.name) ?? []) {
        if (provider.pkg.package === pkg.package) continue
        if (!relation.operator || this.providerSatisfies(provider, relation, fromArch))
          return `${pkg.package} conflicts with ${provider.pkg.package} (provides ${relation.name})`
      }
    }
    for (const name of [pkg.package, ...provides.map((p) => p.name)]) {
      for (const { from, relation } of this.conflictsOn.get(name) ?? []) {
        if (from.package === pkg.package) continue
        const version = name === pkg.package ? pkg.version : provides.find((p) => p.name === name)?.version
        if (
          relation.operator &&
          (!version || !satisfiesDebVersion(version, relation.operator, relation.version!))
        )
          continue
        return `${from.package} ${from.version} conflicts with ${pkg.package}${name === pkg.package ? '' : ` (provides ${name})`}`
      }
    }
    return undefined
  }

  markInstalled(pkg: AptPackage): void {
    const same = this.installed.get(pkg.package)
    if (same) {
      const index = same.findIndex((other) => other.architecture === pkg.architecture)
      if (index >= 0) same.splice(index, 1)
      same.push(pkg)
    } else this.installed.set(pkg.package, [pkg])
    const { conflicts, provides } = this.relationsOf(pkg)
    for (const relation of provides) {
      const list = this.installedProvides.get(relation.name)
      const entry = { pkg, relation }
      if (list) list.push(entry)
      else this.installedProvides.set(relation.name, [entry])
    }
    for (const relation of conflicts) {
      const list = this.conflictsOn.get(relation.name)
      const entry = { from: pkg, relation }
      if (list) list.push(entry)
      else this.conflictsOn.set(relation.name, [entry])
    }
  }

  installedPackages(): AptPackage[] {
    return [...this.installed.values()].flat()
  }

  isInstalled(pkg: AptPackage): boolean {
    return (this.installed.get(pkg.package) ?? []).includes(pkg)
  }

  install(pkg: AptPackage, chain: string[]): void {
    if (this.isInstalled(pkg)) return
    this.markInstalled(pkg)
    const key = keyOf(pkg)
    const here = [...chain, pkg.package]
    this.chosen.set(key, pkg)
    this.reasons.set(key, here)
    for (const group of this.relationsOf(pkg).depends) this.resolveGroup(group, pkg, here)
  }

  resolveGroup(group: RelationGroup, from: AptPackage, chain: string[]): void {
    const fromArch = this.dependerArch(from)
    if (group.some((relation) => this.installedSatisfies(relation, fromArch))) return
    const reasons: string[] = []
    for (const relation of group) {
      const { found, why } = this.candidatesFor(relation, fromArch)
      if (why) reasons.push(why)
      for (const candidate of found) {
        const conflict = this.conflictOf(candidate)
        if (conflict) {
          reasons.push(`${formatRelation(relation)}: ${conflict}`)
          continue
        }
        this.install(candidate, chain)
        return
      }
    }
    const dependency = group.map(formatRelation).join(' | ')
    throw new AirgapError(
      'E_INPUT',
      `cannot install ${chain[0]}: ${[...chain, dependency].join(' → ')} is not satisfiable (${reasons.join('; ')})`,
      {
        data: { package: chain[0], chain, dependency, reasons },
        hints: [
          'Check the package names and the suites/components of the apt source, or add the missing package to the baseline.',
        ],
      },
    )
  }
}

/** Parses an install request: `name`, `name:arch`, `name=version`, or `name (op version)`. */
export function parseAptRequest(request: string): Relation {
  const eq = /^([^\s=(]+)=(\S+)$/.exec(request.trim())
  if (eq) return { ...parseRelation(eq[1]!), operator: '=', version: eq[2]! }
  return parseRelation(request)
}

function resolveRequest(resolver: Resolver, request: string, index: AptIndex): AptPackage | undefined {
  const relation = parseAptRequest(request)
  const arch =
    relation.archQualifier && relation.archQualifier !== 'any' ? relation.archQualifier : index.architecture
  if (relation.operator === '=') {
    // As `apt-get install name=version`: that version, candidate or not.
    const pinned = (index.versions.get(relation.name) ?? []).find(
      (p) =>
        compareDebVersions(p.version, relation.version!) === 0 &&
        (p.architecture === arch || p.architecture === 'all'),
    )
    if (pinned) return pinned
  }
  const exact = {
    ...relation,
    archQualifier: relation.archQualifier === 'any' ? undefined : relation.archQualifier,
  }
  const { found, why } = resolver.candidatesFor(exact, arch)
  const real = found.filter((pkg) => pkg.package === relation.name)
  if (real.length) return real[0]
  if (found.length > 1) {
    const installed = found.find((pkg) => resolver.isInstalled(pkg))
    if (installed) return undefined
    throw new AirgapError(
      'E_INPUT',
      `${request} is a virtual package provided by ${found.map((p) => p.package).join(', ')}; name one of them`,
      { data: { package: request, providers: found.map((p) => p.package) } },
    )
  }
  if (found.length === 1) return found[0]
  throw new AirgapError('E_INPUT', `cannot install ${request}: ${why}`, {
    data: { package: request, chain: [request], reasons: [why] },
    hints: ['Check the package name and the suites/components of the apt source.'],
  })
}

function resolveBaseline(index: AptIndex, baseline: AptBaseline): Resolver {
  const resolver = new Resolver(index)
  if (baseline.installed) {
    for (const item of baseline.installed) {
      const list = index.candidates.get(item.package) ?? []
      const pkg =
        list.find(
          (p) =>
            (!item.architecture || p.architecture === item.architecture) &&
            (!item.version || p.version === item.version),
        ) ??
        // Installed but not in this index (or another version): still installed, as far as names go.
        ({
          package: item.package,
          version: item.version ?? '0',
          architecture: item.architecture ?? index.architecture,
          multiArch: item.multiArch ?? list[0]?.multiArch ?? 'no',
          priority: undefined,
          essential: false,
          depends: undefined,
          preDepends: undefined,
          provides: item.provides ?? list[0]?.provides,
          conflicts: undefined,
          breaks: undefined,
          filename: '',
          size: 0,
          sha256: '',
          extra: '',
        } satisfies AptPackage)
      resolver.markInstalled(pkg)
    }
  }
  const priorities = new Set(baseline.priorities ?? [])
  const seeds: AptPackage[] = []
  if (priorities.size) {
    for (const list of index.candidates.values())
      for (const pkg of list)
        if (
          pkg.priority &&
          priorities.has(pkg.priority) &&
          [index.architecture, 'all'].includes(pkg.architecture)
        )
          seeds.push(pkg)
  }
  seeds.sort((a, b) => (a.package < b.package ? -1 : a.package > b.package ? 1 : 0))
  for (const request of baseline.packages ?? []) {
    const pkg = resolveRequest(resolver, request, index)
    if (pkg) seeds.push(pkg)
  }
  // Like debootstrap: the seeds are installed whatever they conflict with, then their dependencies are resolved.
  for (const pkg of seeds) resolver.markInstalled(pkg)
  for (const pkg of seeds) {
    for (const group of resolver.relationsOf(pkg).depends)
      resolver.resolveGroup(group, pkg, ['(baseline)', pkg.package])
  }
  return resolver
}

/** Resolves what `apt-get install <requests>` would fetch onto a target that has the baseline installed. */
export function resolveAptClosure(options: AptClosureOptions): AptClosureResult {
  const { index } = options
  const base = resolveBaseline(index, options.baseline ?? {})
  const baseline = base.installedPackages()
  const resolver = new Resolver(index)
  for (const pkg of baseline) resolver.markInstalled(pkg)
  for (const request of options.requests) {
    const pkg = resolveRequest(resolver, request, index)
    if (!pkg || resolver.isInstalled(pkg)) continue
    const conflict = resolver.conflictOf(pkg)
    if (conflict)
      throw new AirgapError('E_INPUT', `cannot install ${request}: ${conflict}`, {
        data: { package: request, chain: [request], reasons: [conflict] },
      })
    resolver.install(pkg, [])
  }
  const order = (a: AptPackage, b: AptPackage) => {
    const ka = keyOf(a)
    const kb = keyOf(b)
    return ka < kb ? -1 : ka > kb ? 1 : 0
  }
  return {
    packages: [...resolver.chosen.values()].sort(order),
    baseline: baseline.sort(order),
    reasons: resolver.reasons,
  }
}
