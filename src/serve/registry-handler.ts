import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { blobPath, OCI_INDEX } from '../bundle/layout.js'
import type { BundleReader } from '../bundle/reader.js'
import { AirgapError } from '../errors.js'
import { type EventSink, silentSink } from '../events/types.js'
import { type Descriptor, MediaType } from '../oci/media-types.js'
import { UserStore } from './htpasswd.js'
import { RegistryError } from './registry-errors.js'
import { compareCodePoints, parseRefName, RepositoryNames } from './registry-names.js'
import { type OverlayManifest, parseDigest, RegistryOverlay, type UploadSession } from './registry-overlay.js'

/**
 * The site's private OCI registry, served straight out of a bundle file: the OCI distribution API (pull, push, tags
 * list, catalog, referrers) over the bundle's OCI layout, with a writable overlay folder for what is pushed later.
 *
 * - Images keep their full upstream names (`docker.io/library/nginx`, `nvcr.io/nvidia/cuda`), charts are
 *   `charts/<name>`. Name rule (details and examples in registry-names.ts): with containerd's `?ns=<upstream>` the
 *   name is `<upstream>/<path>` (`/v2/library/nginx/…?ns=docker.io` is `docker.io/library/nginx`); a path that starts
 *   with a host is the full name; an unqualified path is the repository of exactly that name, else Docker Hub's if
 *   the registry has it (that is what an unqualified name means to every Docker client), else the one other
 *   upstream that has it; when several other upstreams have it the request fails naming them (NAME_UNKNOWN).
 * - Manifests by tag come from the bundle's oci/index.json; by digest, any manifest of the repository (an image's
 *   index and each platform's manifest). Blobs are content-addressed: any blob of the bundle or the overlay, in any
 *   repository the registry knows. Overlay content is looked up first, so a site can add or retag images.
 * - Blobs are streamed from the bundle (split volumes included) with backpressure and Range support; nothing is
 *   extracted or held in memory.
 * - Pull is anonymous unless `anonymousPull` is false; everything else needs a user from the bcrypt htpasswd file
 *   or the users map (Basic auth, realm "astrago-airgap"). Without any user the registry is read-only (DENIED).
 *   When users exist, an anonymous `GET /v2/` answers 401 with the Basic challenge even if pull is anonymous:
 *   clients (skopeo, docker) learn from that ping whether to send their credentials with later pushes, and pullers
 *   without credentials (skopeo, distribution's pull-through cache, containerd) then pull anonymously all the same.
 *
 * The handler answers requests under /v2 and returns false for any other path, so another handler (the file server)
 * can serve it.
 */
export interface RegistryAuthOptions {
  /** bcrypt htpasswd file; reread when it changes. */
  htpasswdFile?: string
  /** user → bcrypt hash, in addition to the file. */
  users?: Record<string, string>
  /** Pull without credentials (default true). */
  anonymousPull?: boolean
}

export interface RegistryHandlerOptions {
  reader: BundleReader
  /** Writable folder beside the bundle for pushes; created if missing. */
  overlayDir: string
  auth?: RegistryAuthOptions
  sink?: EventSink
}

export type RegistryHandler = ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>) & {
  /** Reads the bundle's index and opens the overlay; requests wait for it anyway, this surfaces errors early. */
  ready(): Promise<void>
}

export const REGISTRY_REALM = 'astrago-airgap'
const MAX_MANIFEST_BYTES = 4 << 20
const MAX_INDEX_BYTES = 64 << 20
const TAG = /^[\w][\w.-]{0,127}$/
const MANIFEST_TYPES = new Set<string>([
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
])
const INDEX_TYPES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList])
const NON_DISTRIBUTABLE = /(foreign|nondistributable)/

interface ManifestEntry {
  mediaType: string
  size: number
}

interface Content {
  digest: string
  size: number
  mediaType: string
  open(start: number, end: number): Readable
}

/** What the bundle's OCI layout holds, by repository. */
class BundleContent {
  readonly repositories = new Map<
    string,
    { tags: Map<string, string>; manifests: Map<string, ManifestEntry> }
  >()

  private constructor(private readonly reader: BundleReader) {}

  static async load(reader: BundleReader): Promise<BundleContent> {
    const content = new BundleContent(reader)
    const location = reader.locate(OCI_INDEX)
    if (!location) return content
    if (location.size > MAX_INDEX_BYTES)
      throw new AirgapError('E_INTEGRITY', `${OCI_INDEX} is implausibly large.`)
    const index = parseJson<{ manifests?: (Descriptor & { annotations?: Record<string, string> })[] }>(
      await reader.read(OCI_INDEX),
      OCI_INDEX,
    )
    for (const entry of index.manifests ?? []) {
      const refName = entry.annotations?.['org.opencontainers.image.ref.name']
      if (!refName || !entry.digest) continue
      const { repository, tag } = parseRefName(refName)
      let repo = content.repositories.get(repository)
      if (!repo) {
        repo = { tags: new Map(), manifests: new Map() }
        content.repositories.set(repository, repo)
      }
      if (tag) repo.tags.set(tag, entry.digest)
      await content.addManifest(repo.manifests, entry, 0)
    }
    return content
  }

  /** Adds a manifest and, for an index, the manifests it lists (those the bundle holds). */
  private async addManifest(into: Map<string, ManifestEntry>, d: Descriptor, depth: number): Promise<void> {
    const location = this.reader.locate(blobPath(d.digest))
    if (!location || into.has(d.digest)) return
    into.set(d.digest, { mediaType: d.mediaType, size: location.size })
    if (!INDEX_TYPES.has(d.mediaType) || depth > 3 || location.size > MAX_MANIFEST_BYTES) return
    const child = parseJson<{ manifests?: Descriptor[] }>(await this.reader.read(location.path), d.digest)
    for (const m of child.manifests ?? []) {
      if (m.digest && m.mediaType) await this.addManifest(into, m, depth + 1)
    }
  }

  blob(digest: string): Content | undefined {
    if (!parseDigest(digest)) return undefined
    const location = this.reader.locate(blobPath(digest))
    if (!location) return undefined
    return {
      digest,
      size: location.size,
      mediaType: 'application/octet-stream',
      open: (start, end) => this.reader.openStream(location, start, end),
    }
  }
}

interface State {
  bundle: BundleContent
  overlay: RegistryOverlay
  names: RepositoryNames
}

interface Request {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  method: string
  user: string | undefined
  state: State
}

export function createRegistryHandler(options: RegistryHandlerOptions): RegistryHandler {
  const sink = options.sink ?? silentSink
  const users = new UserStore({ htpasswdFile: options.auth?.htpasswdFile, users: options.auth?.users })
  const anonymousPull = options.auth?.anonymousPull ?? true
  if (!anonymousPull && !users.hasUsers) {
    throw new AirgapError(
      'E_INPUT',
      'Anonymous pull is off, but no registry user is configured: nobody could pull.',
      {
        hints: ['Give an htpasswd file with bcrypt entries, or allow anonymous pull.'],
      },
    )
  }
  let loading: Promise<State> | undefined
  const load = () => {
    loading ??= (async () => {
      const bundle = await BundleContent.load(options.reader)
      const overlay = await RegistryOverlay.open(options.overlayDir)
      const names = new RepositoryNames([...bundle.repositories.keys(), ...overlay.repositories()])
      return { bundle, overlay, names }
    })()
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
      await route({ req, res, url, method, user, state })
    } catch (error) {
      sendError(req, res, error)
    }
    return true
  }

  /** The user of the request, or undefined for anonymous; throws UNAUTHORIZED or DENIED when not allowed. */
  async function authenticate(req: IncomingMessage, method: string, url: URL): Promise<string | undefined> {
    let user: string | undefined
    const header = req.headers.authorization
    const basic = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      const name = colon >= 0 ? decoded.slice(0, colon) : decoded
      const password = colon >= 0 ? decoded.slice(colon + 1) : ''
      // An empty user (skopeo sends "Basic Og==" when it has no credentials) is anonymous.
      if (name) {
        if (!(await users.verify(name, password))) {
          sink.emit({
            type: 'log',
            level: 'warn',
            code: 'W_REGISTRY_AUTH',
            message: `Registry: refused the credentials of user "${name}" for ${method} ${url.pathname}`,
          })
          throw unauthorized('The user name or password is wrong.')
        }
        user = name
      }
    }
    if (user) return user
    const read = method === 'GET' || method === 'HEAD'
    const ping = url.pathname === '/v2/' || url.pathname === '/v2'
    if (ping) {
      // Tell clients that credentials exist here, so those that have some send them with their pushes.
      if (users.hasUsers) throw unauthorized('Authentication is required to push; pull is anonymous.')
      return undefined
    }
    if (read) {
      if (anonymousPull) return undefined
      throw unauthorized('Authentication is required.')
    }
    if (!users.hasUsers) {
      throw new RegistryError('DENIED', 'This registry is read-only: no user is configured to push.')
    }
    throw unauthorized('Authentication is required to push.')
  }

  async function route(r: Request): Promise<void> {
    const path = r.url.pathname.slice('/v2/'.length)
    if (path === '' || r.url.pathname === '/v2') return base(r)
    if (path === '_catalog') return catalog(r)
    let m = /^(.+)\/manifests\/([^/]+)$/.exec(path)
    if (m) return await manifests(r, m[1]!, decode(m[2]!))
    m = /^(.+)\/blobs\/uploads\/?([^/]*)$/.exec(path)
    if (m) return await uploads(r, m[1]!, decode(m[2]!))
    m = /^(.+)\/blobs\/([^/]+)$/.exec(path)
    if (m) return await blobs(r, m[1]!, decode(m[2]!))
    m = /^(.+)\/tags\/list$/.exec(path)
    if (m) return tagsList(r, m[1]!)
    m = /^(.+)\/referrers\/([^/]+)$/.exec(path)
    if (m) return referrers(r, m[1]!, decode(m[2]!))
    throw new RegistryError('NAME_UNKNOWN', `No registry endpoint at ${r.url.pathname}.`, undefined, 404)
  }

  function base(r: Request): void {
    allow(r, ['GET', 'HEAD'])
    sendJson(r, 200, {})
  }

  /** The repository a request reads from: it must exist. */
  function existing(r: Request, path: string): string {
    const ns = r.url.searchParams.get('ns') ?? undefined
    const resolved = r.state.names.resolve(path, ns)
    switch (resolved.kind) {
      case 'found':
        return resolved.name
      case 'invalid':
        throw new RegistryError('NAME_INVALID', `Invalid repository name ${path}: ${resolved.reason}.`, {
          name: path,
        })
      case 'ambiguous':
        throw new RegistryError(
          'NAME_UNKNOWN',
          `${path} is ambiguous here: ${resolved.candidates.join(', ')} all have it; use the full name or ?ns=.`,
          { name: path, candidates: resolved.candidates },
        )
      case 'new':
        throw new RegistryError(
          'NAME_UNKNOWN',
          `The repository ${resolved.name} is not known to this registry.`,
          {
            name: resolved.name,
          },
        )
    }
  }

  /** The repository a request writes to: an existing one, or a new one of that name. */
  function writable(r: Request, path: string): string {
    const resolved = r.state.names.resolve(path, r.url.searchParams.get('ns') ?? undefined)
    if (resolved.kind === 'new') return resolved.name
    return existing(r, path)
  }

  function blobContent(
    state: State,
    digest: string,
    overlayFile?: { path: string; size: number },
  ): Content | undefined {
    if (overlayFile) {
      return {
        digest,
        size: overlayFile.size,
        mediaType: 'application/octet-stream',
        open: (start, end) => state.overlay.openBlob(overlayFile.path, start, end),
      }
    }
    return state.bundle.blob(digest)
  }

  async function findBlob(state: State, digest: string): Promise<Content | undefined> {
    return blobContent(state, digest, await state.overlay.blobFile(digest)) ?? state.bundle.blob(digest)
  }

  async function findManifest(state: State, name: string, reference: string): Promise<Content | undefined> {
    const isDigest = reference.includes(':')
    if (isDigest && !parseDigest(reference)) {
      throw new RegistryError('DIGEST_INVALID', `"${reference}" is not a sha256 or sha512 digest.`)
    }
    const overlayDigest = isDigest ? reference : state.overlay.tag(name, reference)
    const overlayManifest = overlayDigest ? state.overlay.manifest(name, overlayDigest) : undefined
    if (overlayDigest && overlayManifest) {
      const file = await state.overlay.blobFile(overlayDigest)
      const content = file && blobContent(state, overlayDigest, file)
      if (content) return { ...content, mediaType: overlayManifest.mediaType }
    }
    const repo = state.bundle.repositories.get(name)
    const digest = isDigest ? reference : repo?.tags.get(reference)
    const entry = digest ? repo?.manifests.get(digest) : undefined
    if (!digest || !entry) return undefined
    const content = state.bundle.blob(digest)
    return content && { ...content, mediaType: entry.mediaType }
  }

  async function manifests(r: Request, path: string, reference: string): Promise<void> {
    allow(r, ['GET', 'HEAD', 'PUT', 'DELETE'])
    if (r.method === 'PUT') return await putManifest(r, path, reference)
    const name = existing(r, path)
    if (r.method === 'DELETE') return await deleteManifest(r, path, name, reference)
    const content = await findManifest(r.state, name, reference)
    if (!content) {
      throw new RegistryError('MANIFEST_UNKNOWN', `${name} has no manifest ${reference}.`, {
        name,
        reference,
      })
    }
    await sendContent(r, content, false)
  }

  async function putManifest(r: Request, path: string, reference: string): Promise<void> {
    const name = writable(r, path)
    const isDigest = reference.includes(':')
    const refDigest = isDigest ? parseDigest(reference) : undefined
    if (isDigest && !refDigest)
      throw new RegistryError('DIGEST_INVALID', `"${reference}" is not a supported digest.`)
    // OCI 1.1: a push by digest may tag it at once with ?tag=…; the tags applied are echoed in OCI-Tag.
    const tags = isDigest ? r.url.searchParams.getAll('tag') : [reference]
    for (const tag of tags) {
      if (!TAG.test(tag)) throw new RegistryError('MANIFEST_INVALID', `"${tag}" is not a valid tag.`, { tag })
    }
    const bytes = await readBody(r.req, MAX_MANIFEST_BYTES)
    const contentType = (r.req.headers['content-type'] ?? '').split(';')[0]!.trim()
    let doc: {
      schemaVersion?: number
      mediaType?: string
      artifactType?: string
      config?: Descriptor
      layers?: Descriptor[]
      manifests?: Descriptor[]
      subject?: Descriptor
      annotations?: Record<string, string>
    }
    try {
      doc = JSON.parse(bytes.toString('utf8'))
    } catch {
      throw new RegistryError('MANIFEST_INVALID', 'The manifest is not valid JSON.')
    }
    if (typeof doc !== 'object' || doc === null || doc.schemaVersion !== 2) {
      throw new RegistryError('MANIFEST_INVALID', 'Only schemaVersion 2 manifests are accepted.')
    }
    const mediaType = doc.mediaType ?? contentType
    if (doc.mediaType && contentType && contentType !== doc.mediaType) {
      throw new RegistryError(
        'MANIFEST_INVALID',
        `The manifest says mediaType ${doc.mediaType}, but was sent as ${contentType}.`,
      )
    }
    if (!MANIFEST_TYPES.has(mediaType)) {
      throw new RegistryError(
        'MANIFEST_INVALID',
        `Manifests of type "${mediaType || 'unknown'}" are not accepted.`,
        {
          accepted: [...MANIFEST_TYPES],
        },
      )
    }
    const check = (d: Descriptor | undefined, what: string): Descriptor => {
      if (!d || typeof d !== 'object' || typeof d.digest !== 'string' || !parseDigest(d.digest)) {
        throw new RegistryError('MANIFEST_INVALID', `The manifest's ${what} is not a valid descriptor.`)
      }
      if (!Number.isSafeInteger(d.size) || d.size < 0) {
        throw new RegistryError('MANIFEST_INVALID', `The manifest's ${what} has no valid size.`)
      }
      return d
    }
    if (INDEX_TYPES.has(mediaType)) {
      if (!Array.isArray(doc.manifests))
        throw new RegistryError('MANIFEST_INVALID', 'The index has no manifests list.')
      for (const [i, entry] of doc.manifests.entries()) {
        const d = check(entry, `manifests[${i}]`)
        if (!(await findManifest(r.state, name, d.digest))) {
          throw new RegistryError(
            'MANIFEST_BLOB_UNKNOWN',
            `${name} has no manifest ${d.digest} (listed in the index).`,
            {
              digest: d.digest,
            },
          )
        }
      }
    } else {
      if (!Array.isArray(doc.layers))
        throw new RegistryError('MANIFEST_INVALID', 'The manifest has no layers list.')
      const needed = [check(doc.config, 'config'), ...doc.layers.map((l, i) => check(l, `layers[${i}]`))]
      for (const d of needed) {
        if (NON_DISTRIBUTABLE.test(d.mediaType ?? '') || (d as { urls?: string[] }).urls?.length) continue
        if (!(await findBlob(r.state, d.digest))) {
          throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `The blob ${d.digest} is not in this registry.`, {
            digest: d.digest,
          })
        }
      }
    }
    const subject = doc.subject ? check(doc.subject, 'subject').digest : undefined
    const algorithm = refDigest?.algorithm ?? 'sha256'
    const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
    if (isDigest && digest !== reference) {
      throw new RegistryError('DIGEST_INVALID', `The manifest's digest is ${digest}, not ${reference}.`, {
        expected: reference,
        actual: digest,
      })
    }
    // For the referrers API: an image's artifactType is its own, else its config's media type (OCI 1.1).
    const artifactType = [doc.artifactType, doc.config?.mediaType].find((t) => typeof t === 'string')
    const annotations = isStringRecord(doc.annotations) ? doc.annotations : undefined
    const record: OverlayManifest = {
      mediaType,
      size: bytes.length,
      ...(subject ? { subject } : {}),
      ...(artifactType ? { artifactType } : {}),
      ...(annotations ? { annotations } : {}),
    }
    await r.state.overlay.putManifest(name, digest, bytes, record, tags)
    r.state.names.add(name)
    sink.emit({
      type: 'log',
      level: 'info',
      code: 'I_REGISTRY_PUSH',
      message: `Registry: ${r.user} pushed ${name}${isDigest ? '@' : ':'}${reference} (${digest})`,
    })
    r.res.setHeader('Location', location(r, `/v2/${path}/manifests/${digest}`))
    r.res.setHeader('Docker-Content-Digest', digest)
    if (subject) r.res.setHeader('OCI-Subject', subject)
    if (isDigest && tags.length > 0) r.res.setHeader('OCI-Tag', tags)
    sendEmpty(r, 201)
  }

  async function deleteManifest(r: Request, path: string, name: string, reference: string): Promise<void> {
    const isDigest = reference.includes(':')
    if (isDigest && !parseDigest(reference))
      throw new RegistryError('DIGEST_INVALID', `"${reference}" is not a digest.`)
    const removed = isDigest
      ? await r.state.overlay.deleteManifest(name, reference)
      : await r.state.overlay.deleteTag(name, reference)
    if (removed) return sendEmpty(r, 202)
    const repo = r.state.bundle.repositories.get(name)
    if (isDigest ? repo?.manifests.has(reference) : repo?.tags.has(reference)) {
      throw new RegistryError(
        'UNSUPPORTED',
        `${path}:${reference} is part of the bundle, which is read-only.`,
      )
    }
    throw new RegistryError('MANIFEST_UNKNOWN', `${name} has no manifest ${reference}.`, { name, reference })
  }

  async function blobs(r: Request, path: string, digest: string): Promise<void> {
    allow(r, ['GET', 'HEAD', 'DELETE'])
    const name = existing(r, path)
    if (r.method === 'DELETE') {
      throw new RegistryError(
        'UNSUPPORTED',
        'Blobs are content-addressed and shared; they are not deleted one by one.',
      )
    }
    if (!parseDigest(digest))
      throw new RegistryError('DIGEST_INVALID', `"${digest}" is not a sha256 or sha512 digest.`)
    const content = await findBlob(r.state, digest)
    if (!content) throw new RegistryError('BLOB_UNKNOWN', `${name} has no blob ${digest}.`, { digest })
    await sendContent(r, content, true)
  }

  async function uploads(r: Request, path: string, id: string): Promise<void> {
    const { overlay } = r.state
    if (!id) {
      allow(r, ['POST'])
      const name = writable(r, path)
      const mount = r.url.searchParams.get('mount')
      if (mount && parseDigest(mount) && (await findBlob(r.state, mount))) {
        await overlay.ensureRepository(name)
        r.state.names.add(name)
        r.res.setHeader('Location', location(r, `/v2/${path}/blobs/${mount}`))
        r.res.setHeader('Docker-Content-Digest', mount)
        return sendEmpty(r, 201)
      }
      const session = await overlay.startUpload(name)
      const digest = r.url.searchParams.get('digest')
      if (digest !== null) {
        try {
          await overlay.appendUpload(session, r.req, { length: contentLength(r.req) })
          await overlay.completeUpload(session, digest)
        } catch (error) {
          await overlay.cancelUpload(session)
          throw error
        }
        return blobCreated(r, path, name, digest)
      }
      r.req.resume()
      return uploadStatus(r, path, session, 202)
    }
    allow(r, ['GET', 'PATCH', 'PUT', 'DELETE'])
    const name = writable(r, path)
    const session = await overlay.getUpload(id)
    if (!session || session.name !== name) {
      r.req.resume()
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `There is no upload ${id} in ${name}.`, { uuid: id })
    }
    if (r.method === 'GET') return uploadStatus(r, path, session, 204)
    if (r.method === 'DELETE') {
      await overlay.cancelUpload(session)
      return sendEmpty(r, 204)
    }
    const range = parseContentRange(r.req.headers['content-range'])
    let current = session
    if (r.method === 'PATCH' || hasBody(r.req)) {
      const length = range ? range.end - range.start + 1 : contentLength(r.req)
      const declared = contentLength(r.req)
      if (range && declared !== undefined && declared !== length) {
        r.req.resume()
        throw new RegistryError(
          'SIZE_INVALID',
          `Content-Range says ${length} bytes, Content-Length ${declared}.`,
        )
      }
      current = await overlay.appendUpload(session, r.req, { start: range?.start, length })
    }
    if (r.method === 'PATCH') return uploadStatus(r, path, current, 202)
    const digest = r.url.searchParams.get('digest')
    if (!digest) throw new RegistryError('DIGEST_INVALID', 'Completing an upload needs ?digest=.')
    await overlay.completeUpload(current, digest)
    return blobCreated(r, path, name, digest)
  }

  function blobCreated(r: Request, path: string, name: string, digest: string): void {
    r.state.names.add(name)
    r.res.setHeader('Location', location(r, `/v2/${path}/blobs/${digest}`))
    r.res.setHeader('Docker-Content-Digest', digest)
    sendEmpty(r, 201)
  }

  function uploadStatus(r: Request, path: string, session: UploadSession, status: number): void {
    r.res.setHeader('Location', location(r, `/v2/${path}/blobs/uploads/${session.id}`))
    r.res.setHeader('Range', `0-${Math.max(0, session.size - 1)}`)
    r.res.setHeader('Docker-Upload-UUID', session.id)
    sendEmpty(r, status)
  }

  function tagsList(r: Request, path: string): void {
    allow(r, ['GET', 'HEAD'])
    const name = existing(r, path)
    const tags = new Set([
      ...Object.keys(r.state.overlay.tags(name)),
      ...(r.state.bundle.repositories.get(name)?.tags.keys() ?? []),
    ])
    const { page, next } = paginate([...tags].sort(compareCodePoints), r.url)
    if (next) r.res.setHeader('Link', `<${next}>; rel="next"`)
    sendJson(r, 200, { name: path, tags: page })
  }

  function catalog(r: Request): void {
    allow(r, ['GET', 'HEAD'])
    const { page, next } = paginate(r.state.names.list(), r.url)
    if (next) r.res.setHeader('Link', `<${next}>; rel="next"`)
    sendJson(r, 200, { repositories: page })
  }

  function referrers(r: Request, path: string, digest: string): void {
    allow(r, ['GET', 'HEAD'])
    // A repository nothing was pushed to yet has no referrers: an empty list, as the spec wants (never a 404).
    const name = writable(r, path)
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

  /** Sends a manifest or blob: HEAD without a body, GET streamed, a single byte range as 206 when asked for. */
  async function sendContent(r: Request, content: Content, ranges: boolean): Promise<void> {
    const { res } = r
    res.setHeader('Content-Type', content.mediaType)
    res.setHeader('Docker-Content-Digest', content.digest)
    res.setHeader('ETag', `"${content.digest}"`)
    if (ranges) res.setHeader('Accept-Ranges', 'bytes')
    let start = 0
    let end = content.size - 1
    let status = 200
    const rangeHeader = ranges ? r.req.headers.range : undefined
    if (rangeHeader) {
      const range = parseRange(rangeHeader, content.size)
      if (range === 'unsatisfiable') {
        res.setHeader('Content-Range', `bytes */${content.size}`)
        throw new RegistryError(
          'RANGE_INVALID',
          `${rangeHeader} is outside the blob (${content.size} bytes).`,
          {
            size: content.size,
          },
        )
      }
      if (range) {
        ;({ start, end } = range)
        status = 206
        res.setHeader('Content-Range', `bytes ${start}-${end}/${content.size}`)
      }
    }
    const length = Math.max(0, end - start + 1)
    res.setHeader('Content-Length', length)
    res.writeHead(status)
    if (r.method === 'HEAD' || length === 0) {
      res.end()
      return
    }
    try {
      await pipeline(content.open(start, end), res)
    } catch (error) {
      const code = (error as { code?: string }).code
      if (code !== 'ERR_STREAM_PREMATURE_CLOSE' && !res.destroyed) {
        sink.emit({
          type: 'log',
          level: 'warn',
          code: 'W_REGISTRY_READ',
          message: `Registry: sending ${content.digest} failed: ${(error as Error).message}`,
        })
      }
      res.destroy()
    }
  }

  function sendJson(r: Request, status: number, value: unknown, contentType = 'application/json'): void {
    const body = Buffer.from(JSON.stringify(value))
    r.res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': body.length })
    r.res.end(r.method === 'HEAD' ? undefined : body)
  }

  function sendEmpty(r: Request, status: number): void {
    r.res.writeHead(status, { 'Content-Length': 0 })
    r.res.end()
  }

  function sendError(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    let registryError: RegistryError
    if (error instanceof RegistryError) registryError = error
    else {
      const message = error instanceof Error ? error.message : String(error)
      sink.emit({
        type: 'log',
        level: 'warn',
        code: 'W_REGISTRY_ERROR',
        message: `Registry: ${req.method} ${req.url}: ${message}`,
      })
      registryError = new RegistryError('UNKNOWN', `Internal error: ${message}`)
    }
    if (res.headersSent) {
      res.destroy()
      return
    }
    if (registryError.status === 401) res.setHeader('WWW-Authenticate', `Basic realm="${REGISTRY_REALM}"`)
    if (registryError.status === 405 && !res.hasHeader('Allow')) res.setHeader('Allow', 'GET, HEAD')
    const body = Buffer.from(registryError.body())
    res.writeHead(registryError.status, { 'Content-Type': 'application/json', 'Content-Length': body.length })
    res.end(req.method === 'HEAD' ? undefined : body)
    // A refused upload's body is not read; let the client see the answer and reconnect.
    if (!req.complete) req.resume()
  }

  return Object.assign(handler, {
    ready: async () => {
      await load()
    },
  })
}

function unauthorized(message: string): RegistryError {
  return new RegistryError('UNAUTHORIZED', message)
}

function allow(r: Request, methods: string[]): void {
  if (methods.includes(r.method)) return
  r.res.setHeader('Allow', methods.join(', '))
  r.req.resume()
  throw new RegistryError('UNSUPPORTED', `${r.method} is not supported on ${r.url.pathname}.`)
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string')
  )
}

/** A Location on this registry; keeps `?ns=` so a follow-up request resolves the same repository. */
function location(r: Request, path: string): string {
  const ns = r.url.searchParams.get('ns')
  return ns ? `${path}?ns=${encodeURIComponent(ns)}` : path
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

function contentLength(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length']
  return value === undefined || !/^\d+$/.test(value) ? undefined : Number(value)
}

function hasBody(req: IncomingMessage): boolean {
  return (contentLength(req) ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = contentLength(req)
  if (declared !== undefined && declared > limit) {
    throw new RegistryError('SIZE_INVALID', `The manifest is over ${limit} bytes.`, { limit }, 413)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit)
      throw new RegistryError('SIZE_INVALID', `The manifest is over ${limit} bytes.`, { limit }, 413)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** Content-Range of an upload chunk: `<start>-<end>` (the distribution spec's form) or `bytes <start>-<end>[/size]`. */
function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (!header) return undefined
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim())
  if (!m || Number(m[2]) < Number(m[1])) {
    throw new RegistryError('RANGE_INVALID', `Content-Range "${header}" is not <start>-<end>.`)
  }
  return { start: Number(m[1]), end: Number(m[2]) }
}

/**
 * One byte range of a `Range: bytes=…` header, clamped to the size; 'unsatisfiable' when it starts past the end.
 * Several ranges, or a header that is not a bytes range, are ignored (the whole content is sent), as RFC 9110 allows;
 * an inverted range (`500-0`) is unsatisfiable.
 */
export function parseRange(
  header: string,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  // RFC 9110 would let a server ignore an inverted range; 416 is what the OCI conformance suite expects.
  if (m[2] !== '' && Number(m[2]) < start) return 'unsatisfiable'
  if (start >= size) return 'unsatisfiable'
  return { start, end }
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

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch (error) {
    throw new AirgapError('E_INTEGRITY', `${what} in the bundle is not valid JSON.`, { cause: error })
  }
}
