import { type RpmDependency, type RpmPackage, rpmEvrOf } from './rpm-package.js'
import { compareRpmEvr } from './rpm-version.js'

/**
 * The packages of an rpm repository indexed for dependency resolution (rpm-closure.ts): every version by name, every
 * provide, every file a package ships (primary.xml's, then filelists.xml's where needed), for the architectures
 * wanted in order of preference.
 */
export interface RpmIndex {
  /** Every version by name, newest first. */
  byName: Map<string, RpmPackage[]>
  /** Provides by name (every version of every package). */
  provides: Map<string, Array<{ pkg: RpmPackage; dep: RpmDependency }>>
  /** File path → packages shipping it (primary's files, file provides, and filelists when added). */
  files: Map<string, RpmPackage[]>
  byPkgid: Map<string, RpmPackage>
  /** Architectures in order of preference: the target's, noarch, the others. */
  architectures: string[]
  size: number
}

export interface BuildRpmIndexOptions {
  /** The target architecture first (x86_64, aarch64…), then extra ones wanted (i686 for multilib). */
  architectures: string[]
}

/** Adds `value` to the list of `key`. */
export function addToList<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}

/** Orders versions of one name newest first. */
export function newerFirst(a: RpmPackage, b: RpmPackage): number {
  return compareRpmEvr(rpmEvrOf(b), rpmEvrOf(a))
}

export function buildRpmIndex(packages: Iterable<RpmPackage>, options: BuildRpmIndexOptions): RpmIndex {
  const [target = 'x86_64', ...others] = options.architectures
  const architectures = [target, 'noarch', ...others.filter((a) => a !== 'noarch' && a !== target)]
  const wanted = new Set(architectures)
  const index: RpmIndex = {
    byName: new Map(),
    provides: new Map(),
    files: new Map(),
    byPkgid: new Map(),
    architectures,
    size: 0,
  }
  for (const pkg of packages) {
    if (!wanted.has(pkg.arch)) continue
    if (pkg.checksum.value && index.byPkgid.has(pkg.checksum.value)) continue
    index.size++
    addToList(index.byName, pkg.name, pkg)
    if (pkg.checksum.value) index.byPkgid.set(pkg.checksum.value, pkg)
    for (const dep of pkg.provides) {
      addToList(index.provides, dep.name, { pkg, dep })
      if (dep.name.startsWith('/')) addToList(index.files, dep.name, pkg)
    }
    for (const file of pkg.files) addToList(index.files, file, pkg)
  }
  for (const list of index.byName.values()) list.sort(newerFirst)
  return index
}

/**
 * The file paths some package requires that no package of primary.xml ships or provides: look them up in
 * filelists.xml and add them with `addRpmFileProviders`.
 */
export function missingRpmFilePaths(index: RpmIndex): Set<string> {
  const missing = new Set<string>()
  for (const list of index.byName.values())
    for (const pkg of list)
      for (const dep of pkg.requires)
        if (dep.name.startsWith('/') && !index.files.has(dep.name)) missing.add(dep.name)
  return missing
}

/** Adds file providers found in filelists.xml (path → pkgids). */
export function addRpmFileProviders(index: RpmIndex, providers: Map<string, string[]>): void {
  for (const [path, pkgids] of providers)
    for (const pkgid of pkgids) {
      const pkg = index.byPkgid.get(pkgid)
      if (pkg && !(index.files.get(path) ?? []).includes(pkg)) addToList(index.files, path, pkg)
    }
}
