/**
 * Repository names of the site registry. Images keep their full upstream names: the bundle entry
 * `docker.io/library/nginx:1.27` is the repository `docker.io/library/nginx` holding tag `1.27`, and
 * `nvcr.io/nvidia/cuda` is never confused with `docker.io/nvidia/cuda`. Charts are the repositories `charts/<name>`.
 *
 * How the path of a request (`/v2/<path>/manifests/…`) becomes a repository name:
 *
 * 1. With `?ns=<host>` (containerd's mirror requests): the name is `<host>/<path>`. Docker Hub's aliases
 *    (index.docker.io, registry-1.docker.io) are docker.io, and a one-part Docker Hub path gets `library/`
 *    (`?ns=docker.io` + `nginx` → `docker.io/library/nginx`). A path that already starts with a host keeps it.
 * 2. A path whose first part is a host (has a dot or a port, or is `localhost`) is the full name:
 *    `docker.io/library/nginx`, `nvcr.io/nvidia/cuda`. Docker Hub's aliases and one-part paths are normalized.
 * 3. Otherwise the path is unqualified (`library/nginx`, `nvidia/cuda`, `charts/worker`):
 *    a. a repository with exactly that name (charts, images pushed without a host) is it;
 *    b. else the Docker Hub repository (`docker.io/<path>`, `docker.io/library/<path>` for one part) if the
 *       registry has it: an unqualified name means Docker Hub to every Docker client, so it is not ambiguous;
 *    c. else the one repository of another upstream whose path it is (`quay.io/<path>`);
 *    d. several other upstreams have it: ambiguous, and the request fails naming the candidates (use a full name
 *       or `?ns=`);
 *    e. nobody has it: a new repository of that literal name (a push creates it; a pull finds nothing).
 */
export type NameResolution =
  | { kind: 'found'; name: string }
  | { kind: 'new'; name: string }
  | { kind: 'ambiguous'; candidates: string[] }
  | { kind: 'invalid'; reason: string }

export const DOCKER_HUB = 'docker.io'
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])
const HOST_LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?'
const HOST = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*(?::[0-9]{1,5})?$`)
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const MAX_NAME_LENGTH = 255

/** Whether the first part of a path names a registry host (Docker's rule). */
export function isHostComponent(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost'
}

/** docker.io for Docker Hub's aliases, the host itself otherwise. */
export function normalizeRegistryHost(host: string): string {
  const lower = host.toLowerCase()
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : host
}

/** `host` + `path` as one name, with Docker Hub's `library/` for one-part paths. */
export function qualifyName(host: string, path: string): string {
  const registry = normalizeRegistryHost(host)
  if (registry === DOCKER_HUB && !path.includes('/')) return `${DOCKER_HUB}/library/${path}`
  return `${registry}/${path}`
}

/** Why a request path is not a valid repository name, or undefined when it is. */
export function checkRepositoryPath(path: string): string | undefined {
  if (!path) return 'the repository name is empty'
  if (path.length > MAX_NAME_LENGTH) return `the repository name is longer than ${MAX_NAME_LENGTH} characters`
  const parts = path.split('/')
  const first = parts[0]!
  const hasHost = parts.length > 1 && isHostComponent(first)
  if (hasHost && !HOST.test(first)) return `"${first}" is not a valid registry host`
  for (const part of hasHost ? parts.slice(1) : parts) {
    if (!PATH_COMPONENT.test(part)) {
      return `"${part}" is not a valid path component (lowercase letters, digits and . _ __ - between them)`
    }
  }
  return undefined
}

/** The set of repository names a registry holds, indexed for the unqualified lookups of rule 3. */
export class RepositoryNames {
  private readonly names = new Set<string>()
  /** Path without its host → full names that have it. */
  private readonly byPath = new Map<string, string[]>()

  constructor(names: Iterable<string> = []) {
    for (const name of names) this.add(name)
  }

  add(name: string): void {
    if (this.names.has(name)) return
    this.names.add(name)
    const parts = name.split('/')
    if (parts.length < 2 || !isHostComponent(parts[0]!)) return
    const paths = [parts.slice(1).join('/')]
    if (parts[0] === DOCKER_HUB && parts[1] === 'library' && parts.length === 3) paths.push(parts[2]!)
    for (const path of paths) {
      const list = this.byPath.get(path) ?? []
      list.push(name)
      this.byPath.set(path, list)
    }
  }

  has(name: string): boolean {
    return this.names.has(name)
  }

  /** Every name, sorted by code point (the catalog's order). */
  list(): string[] {
    return [...this.names].sort(compareCodePoints)
  }

  /** Resolves a request path (and containerd's `ns`) to a repository name; see the module comment for the rules. */
  resolve(path: string, ns?: string): NameResolution {
    const invalid = checkRepositoryPath(path)
    if (invalid) return { kind: 'invalid', reason: invalid }
    const parts = path.split('/')
    const qualified = parts.length > 1 && isHostComponent(parts[0]!)
    let name: string | undefined
    if (qualified) {
      name = qualifyName(parts[0]!, parts.slice(1).join('/'))
    } else if (ns !== undefined && ns !== '') {
      if (!HOST.test(ns)) return { kind: 'invalid', reason: `ns "${ns}" is not a registry host` }
      name = qualifyName(ns, path)
    }
    if (name !== undefined) return { kind: this.names.has(name) ? 'found' : 'new', name }

    if (this.names.has(path)) return { kind: 'found', name: path }
    const hub = qualifyName(DOCKER_HUB, path)
    if (this.names.has(hub)) return { kind: 'found', name: hub }
    const others = (this.byPath.get(path) ?? []).filter((n) => !n.startsWith(`${DOCKER_HUB}/`))
    if (others.length === 1) return { kind: 'found', name: others[0]! }
    if (others.length > 1) return { kind: 'ambiguous', candidates: [...others].sort(compareCodePoints) }
    return { kind: 'new', name: path }
  }
}

/**
 * Splits an `org.opencontainers.image.ref.name` of the bundle's index (`docker.io/library/nginx:1.27`,
 * `charts/worker:0.1.0`, `quay.io/x/y@sha256:…`) into repository and tag.
 */
export function parseRefName(refName: string): { repository: string; tag?: string; digest?: string } {
  const at = refName.indexOf('@')
  if (at >= 0) return { repository: refName.slice(0, at), digest: refName.slice(at + 1) }
  const colon = refName.lastIndexOf(':')
  if (colon > refName.lastIndexOf('/')) {
    return { repository: refName.slice(0, colon), tag: refName.slice(colon + 1) }
  }
  return { repository: refName }
}

export function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
