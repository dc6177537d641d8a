import { chartRepository } from '../bundle/layout.js'
import { AirgapError } from '../errors.js'

/**
 * Where a bundle's images land in a site registry: `<registry>/<prefix>/<full original name>:<tag>`, so
 * docker.io/library/nginx:1.27 becomes harbor.site:443/astrago/docker.io/library/nginx:1.27 and images of different
 * upstream registries never collide. Charts go to `<registry>/<prefix>/charts/<name>:<version>`. Install uses the
 * same functions to point workloads at the pushed images.
 */
export interface PushTarget {
  /** host[:port] of the site registry. */
  registry: string
  /** Repository path in front of every name (a Harbor project, optionally with sub-paths). */
  prefix?: string
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/

/**
 * Checks and normalizes what the user typed: `harbor.site:443`, or a URL (`https://harbor.site`), whose `http://`
 * says the registry speaks plain HTTP. The prefix is a repository path (lowercase, no leading or trailing slash).
 */
export function parsePushTarget(
  registry: string,
  prefix?: string,
): { target: PushTarget; plainHttp: boolean } {
  let host = registry.trim()
  let plainHttp = false
  const scheme = /^(https?):\/\//i.exec(host)
  if (scheme) {
    plainHttp = scheme[1]!.toLowerCase() === 'http'
    host = host.slice(scheme[0].length)
  }
  host = host.replace(/\/+$/, '')
  let extra = ''
  const slash = host.indexOf('/')
  if (slash >= 0) {
    extra = host.slice(slash + 1).replace(/^v2\/?/, '')
    host = host.slice(0, slash)
  }
  if (!HOST.test(host)) {
    throw new AirgapError('E_USAGE', `--registry ${registry}: "${host}" is not a registry host.`, {
      hints: ['Write it as host[:port], e.g. harbor.site:443, and the project with --prefix.'],
    })
  }
  const path = [extra, prefix?.trim() ?? '']
    .filter(Boolean)
    .join('/')
    .replace(/^\/+|\/+$/g, '')
  if (path) {
    const bad = path.split('/').find((component) => !PATH_COMPONENT.test(component))
    if (bad !== undefined) {
      throw new AirgapError(
        'E_USAGE',
        `--prefix ${path}: "${bad}" is not a valid repository path component.`,
        {
          hints: [
            'Use lowercase letters, digits and . _ - separators, e.g. --prefix astrago or --prefix astrago/v1.',
          ],
        },
      )
    }
  }
  return { target: { registry: host, ...(path ? { prefix: path } : {}) }, plainHttp }
}

/**
 * The repository in the site registry for an image's full original name (docker.io/library/nginx). A port in the
 * original registry host (registry.corp:5000/x) is not allowed in a repository path, so its colon becomes `_`.
 */
export function siteRepository(target: PushTarget, name: string): string {
  const path = name.replace(/:(\d+)(?=\/|$)/, '_$1')
  return target.prefix ? `${target.prefix}/${path}` : path
}

/** The repository in the site registry for a chart's OCI artifact. */
export function siteChartRepository(target: PushTarget, chartName: string): string {
  return siteRepository(target, chartRepository(chartName))
}

/** The full reference of a pushed image: harbor.site:443/astrago/docker.io/library/nginx:1.27 (or @sha256:…). */
export function siteReference(target: PushTarget, name: string, tagOrDigest: string): string {
  const separator = tagOrDigest.startsWith('sha256:') ? '@' : ':'
  return `${target.registry}/${siteRepository(target, name)}${separator}${tagOrDigest}`
}
