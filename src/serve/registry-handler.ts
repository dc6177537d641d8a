import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BundleReader } from '../bundle/reader.js'
import { type EventSink, logEvent, silentSink } from '../events/types.js'
import { createAuthenticator, REGISTRY_REALM, type RegistryAuthOptions } from './registry-auth.js'
import { handleBlobs } from './registry-blobs.js'
import { loadRegistryState, type RegistryState } from './registry-content.js'
import { RegistryError } from './registry-errors.js'
import { handleCatalog, handleReferrers, handleTagsList } from './registry-lists.js'
import { handleManifests } from './registry-manifests.js'
import { allow, type RegistryRequest, sendJson } from './registry-request.js'
import type { OverlayLimits } from './registry-upload-limits.js'
import { handleUploads } from './registry-uploads.js'

/**
 * The site's private OCI registry, served straight out of a bundle file: the OCI distribution API (pull, push, tags
 * list, catalog, referrers) over the bundle's OCI layout, with a writable overlay folder for what is pushed later.
 * This file is the router: it loads the registry's state, authenticates (registry-auth.ts), hands each endpoint to its
 * handler and turns errors into the API's error bodies.
 *
 * - Images keep their full upstream names (`docker.io/library/nginx`, `nvcr.io/nvidia/cuda`), charts are
 *   `charts/<name>`. Name rule (details and examples in registry-names.ts): with containerd's `?ns=<upstream>` the
 *   name is `<upstream>/<path>` (`/v2/library/nginx/…?ns=docker.io` is `docker.io/library/nginx`); a path that starts
 *   with a host is the full name; an unqualified path is the repository of exactly that name, else Docker Hub's if
 *   the registry has it (that is what an unqualified name means to every Docker client), else the one other
 *   upstream that has it; when several other upstreams have it the request fails naming them (NAME_UNKNOWN).
 * - Where content comes from (registry-content.ts): manifests by tag from the bundle's oci/index.json; by digest, any
 *   manifest of the repository (an image's index and each platform's manifest). Blobs are content-addressed: any
 *   blob of the bundle or the overlay, in any repository the registry knows. Overlay content is looked up first, so a
 *   site can add or retag images.
 * - Blobs are streamed from the bundle (split volumes included) with backpressure and Range support (the rules are in
 *   net/http-range.ts); nothing is extracted or held in memory.
 * - Endpoints: manifests (registry-manifests.ts), blobs (registry-blobs.ts), uploads (registry-uploads.ts), tags list,
 *   catalog and referrers (registry-lists.ts).
 *
 * The handler answers requests under /v2 and returns false for any other path, so another handler (the file server)
 * can serve it.
 */
export { REGISTRY_REALM, type RegistryAuthOptions } from './registry-auth.js'

export interface RegistryHandlerOptions {
  reader: BundleReader
  /** Writable folder beside the bundle for pushes; created if missing. */
  overlayDir: string
  auth?: RegistryAuthOptions
  /** Bounds on uploads into the overlay (a blob's size, the free space left). */
  limits?: OverlayLimits
  sink?: EventSink
}

export type RegistryHandler = ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>) & {
  /** Reads the bundle's index and opens the overlay; requests wait for it anyway, this surfaces errors early. */
  ready(): Promise<void>
}

export function createRegistryHandler(options: RegistryHandlerOptions): RegistryHandler {
  const sink = options.sink ?? silentSink
  const authenticate = createAuthenticator(options.auth ?? {}, sink)
  let loading: Promise<RegistryState> | undefined
  const load = () => {
    loading ??= loadRegistryState(options.reader, options.overlayDir, options.limits)
    loading.catch(() => {
      loading = undefined
    })
    return loading
  }

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://registry.invalid')
    if (url.pathname !== '/v2' && !url.pathname.startsWith('/v2/')) return false
    const method = (req.method ?? 'GET').toUpperCase()
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0')
    try {
      const state = await load()
      const user = await authenticate(req, method, url)
      await route({ req, res, url, method, user, state, sink })
    } catch (error) {
      sendError(req, res, error, sink)
    }
    return true
  }

  return Object.assign(handler, {
    ready: async () => {
      await load()
    },
  })
}

/** Hands a request to the handler of its endpoint; the repository name is everything before the endpoint's path. */
async function route(r: RegistryRequest): Promise<void> {
  const path = r.url.pathname.slice('/v2/'.length)
  if (path === '' || r.url.pathname === '/v2') {
    allow(r, ['GET', 'HEAD'])
    return sendJson(r, 200, {})
  }
  if (path === '_catalog') return handleCatalog(r)
  let m = /^(.+)\/manifests\/([^/]+)$/.exec(path)
  if (m) return await handleManifests(r, m[1]!, decode(m[2]!))
  m = /^(.+)\/blobs\/uploads\/?([^/]*)$/.exec(path)
  if (m) return await handleUploads(r, m[1]!, decode(m[2]!))
  m = /^(.+)\/blobs\/([^/]+)$/.exec(path)
  if (m) return await handleBlobs(r, m[1]!, decode(m[2]!))
  m = /^(.+)\/tags\/list$/.exec(path)
  if (m) return handleTagsList(r, m[1]!)
  m = /^(.+)\/referrers\/([^/]+)$/.exec(path)
  if (m) return handleReferrers(r, m[1]!, decode(m[2]!))
  throw new RegistryError('NAME_UNKNOWN', `No registry endpoint at ${r.url.pathname}.`, undefined, 404)
}

/** Answers an error as the API's JSON body; anything but a RegistryError is an internal error and is reported. */
function sendError(req: IncomingMessage, res: ServerResponse, error: unknown, sink: EventSink): void {
  let registryError: RegistryError
  if (error instanceof RegistryError) {
    registryError = error
    // The site's operator must hear of a full disk: pushes fail until space is freed.
    if (error.status === 507) {
      sink.emit(
        logEvent('W_REGISTRY_DISK_FULL', `Registry: refused ${req.method} ${req.url}: ${error.message}`, {
          method: req.method ?? '',
          url: req.url ?? '',
        }),
      )
    }
  } else {
    const message = error instanceof Error ? error.message : String(error)
    sink.emit({
      type: 'log',
      level: 'warn',
      code: 'W_REGISTRY_ERROR',
      message: `Registry: ${req.method} ${req.url}: ${message}`,
      data: { method: req.method ?? '', url: req.url ?? '' },
    })
    registryError = new RegistryError('UNKNOWN', `Internal error: ${message}`)
  }
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (registryError.status === 401) res.setHeader('WWW-Authenticate', `Basic realm="${REGISTRY_REALM}"`)
  if (registryError.status === 405 && !res.hasHeader('Allow')) res.setHeader('Allow', 'GET, HEAD')
  const retryAfter = (registryError.detail as { retryAfter?: unknown } | undefined)?.retryAfter
  if (registryError.status === 429 && typeof retryAfter === 'number') res.setHeader('Retry-After', retryAfter)
  const body = Buffer.from(registryError.body())
  res.writeHead(registryError.status, { 'Content-Type': 'application/json', 'Content-Length': body.length })
  res.end(req.method === 'HEAD' ? undefined : body)
  // A refused upload's body is not read; let the client see the answer and reconnect.
  if (!req.complete) req.resume()
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}
