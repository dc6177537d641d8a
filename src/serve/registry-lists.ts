import { MediaType } from '../oci/media-types.js'
import { RegistryError } from './registry-errors.js'
import { compareCodePoints } from './registry-names.js'
import { parseDigest } from './registry-overlay.js'
import {
  allow,
  existingRepository,
  type RegistryRequest,
  sendJson,
  writableRepository,
} from './registry-request.js'

/**
 * The listing endpoints of the site registry: `/v2/<name>/tags/list` and `/v2/_catalog`, sorted by code point and
 * paged with `n` and `last` (a Link header points to the next page), and `/v2/<name>/referrers/<digest>`, the
 * manifests pushed with that subject as an OCI image index, filtered by `?artifactType=`.
 */
export function handleTagsList(r: RegistryRequest, path: string): void {
  allow(r, ['GET', 'HEAD'])
  const name = existingRepository(r, path)
  const tags = new Set([
    ...Object.keys(r.state.overlay.tags(name)),
    ...(r.state.bundle.repositories.get(name)?.tags.keys() ?? []),
  ])
  const { page, next } = paginate([...tags].sort(compareCodePoints), r.url)
  if (next) r.res.setHeader('Link', `<${next}>; rel="next"`)
  sendJson(r, 200, { name: path, tags: page })
}

export function handleCatalog(r: RegistryRequest): void {
  allow(r, ['GET', 'HEAD'])
  const { page, next } = paginate(r.state.names.list(), r.url)
  if (next) r.res.setHeader('Link', `<${next}>; rel="next"`)
  sendJson(r, 200, { repositories: page })
}

export function handleReferrers(r: RegistryRequest, path: string, digest: string): void {
  allow(r, ['GET', 'HEAD'])
  // A repository nothing was pushed to yet has no referrers: an empty list, as the spec wants (never a 404).
  const name = writableRepository(r, path)
  if (!parseDigest(digest))
    throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 or sha512 digest.`)
  const artifactType = r.url.searchParams.get('artifactType')
  const found = r.state.overlay
    .referrers(name, digest)
    .filter((x) => !artifactType || x.manifest.artifactType === artifactType)
    .sort((a, b) => compareCodePoints(a.digest, b.digest))
  if (artifactType) r.res.setHeader('OCI-Filters-Applied', 'artifactType')
  sendJson(
    r,
    200,
    {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: found.map(({ digest: d, manifest }) => ({
        mediaType: manifest.mediaType,
        digest: d,
        size: manifest.size,
        ...(manifest.artifactType ? { artifactType: manifest.artifactType } : {}),
        ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
      })),
    },
    MediaType.ociIndex,
  )
}

/** `n` and `last` pagination of a sorted list; `next` is the Link target when more remain. */
function paginate(items: string[], url: URL): { page: string[]; next?: string } {
  const last = url.searchParams.get('last')
  const nParam = url.searchParams.get('n')
  const n = nParam !== null && /^\d+$/.test(nParam) ? Number(nParam) : undefined
  const after = last ? items.filter((item) => item > last) : items
  if (n === undefined) return { page: after }
  const page = after.slice(0, n)
  if (page.length === 0 || page.length === after.length) return { page }
  const next = new URLSearchParams()
  const ns = url.searchParams.get('ns')
  if (ns) next.set('ns', ns)
  next.set('n', String(n))
  next.set('last', page.at(-1)!)
  return { page, next: `${url.pathname}?${next.toString()}` }
}
