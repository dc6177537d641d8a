import type { Readable } from 'node:stream'
import { AirgapError } from '../errors.js'
import type { HttpClient, HttpRequest, HttpResponse } from '../net/http.js'
import { withWholeBodyRetries } from '../net/retry.js'
import { authError, RegistryAuth } from './auth.js'
import { sha256Digest } from './digest.js'
import type { CredentialStore } from './docker-config.js'
import { MANIFEST_ACCEPT } from './media-types.js'
import { registryEndpointHost } from './reference.js'

/**
 * A client for the OCI distribution API: manifests and blobs by tag or digest, with the auth handshake, registry
 * mirrors, and errors that name the image and what the registry said. Manifests are read whole (capped) and checked
 * against their digest; blobs are returned as streams for the caller to verify while it writes them.
 */
export interface Repo {
  registry: string
  repository: string
}

export interface RegistryClientOptions {
  http: HttpClient
  credentials: CredentialStore
  /**
   * Registry name → base URL that stands in for it (a corporate mirror, a pull-through cache, a local test registry).
   * A path on the URL is put in front of the repository: http://mirror:5000/nvcr.io serves nvcr.io/nvidia/cuda at
   * /v2/nvcr.io/nvidia/cuda.
   */
  mirrors?: Record<string, string>
  /** Registries spoken to over plain HTTP when no mirror is given (host or host:port). */
  plainHttp?: string[]
}

export interface FetchedManifest {
  bytes: Buffer
  mediaType: string
  digest: string
}

/** Manifests larger than this are refused (the distribution reference implementation caps them at 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 << 20

interface Endpoint {
  origin: string
  prefix: string
  via?: string
}

export class RegistryClient {
  private readonly auth: RegistryAuth
  private readonly http: HttpClient

  constructor(private readonly options: RegistryClientOptions) {
    this.http = options.http
    this.auth = new RegistryAuth(options.http, options.credentials)
  }

  endpoint(registry: string): Endpoint {
    const mirror = this.options.mirrors?.[registry]
    if (mirror) {
      const url = new URL(mirror)
      return { origin: url.origin, prefix: url.pathname.replace(/\/+$/, '').replace(/^\/+/, ''), via: mirror }
    }
    const plain = this.options.plainHttp?.includes(registry)
    return { origin: `${plain ? 'http' : 'https'}://${registryEndpointHost(registry)}`, prefix: '' }
  }

  private url(repo: Repo, path: string): string {
    const ep = this.endpoint(repo.registry)
    const name = ep.prefix ? `${ep.prefix}/${repo.repository}` : repo.repository
    return `${ep.origin}/v2/${name}/${path}`
  }

  /**
   * Whose credentials a request carries: the host it goes to. Through a mirror that is the mirror's host, so the
   * upstream's credentials (Docker Hub's, NGC's) are never sent to a mirror (`--username mirror-host=…` gives the
   * mirror's own).
   */
  private authHost(repo: Repo): string {
    const via = this.endpoint(repo.registry).via
    return via ? new URL(via).host : repo.registry
  }

  private where(repo: Repo): string {
    const via = this.endpoint(repo.registry).via
    return via ? `${repo.registry} (via mirror ${via})` : repo.registry
  }

  /** A request with the auth handshake: on 401 it learns the challenge and tries once more. */
  async request(repo: Repo, path: string, init: HttpRequest = {}, actions = 'pull'): Promise<HttpResponse> {
    const scope = `repository:${this.scopeName(repo)}:${actions}`
    let sent: string | undefined
    const send = async () => {
      sent = await this.auth.header(this.authHost(repo), scope, init.signal)
      const headers = { ...init.headers, ...(sent ? { authorization: sent } : {}) }
      return await this.http.fetch(this.url(repo, path), { ...init, headers })
    }
    let res = await send()
    if (
      res.status === 401 &&
      (await this.auth.learn(this.authHost(repo), res.header('www-authenticate'), scope, sent))
    ) {
      await res.body.dump()
      res = await send()
    }
    if (res.status === 401) {
      const detail = await describeErrorBody(res)
      throw authError(
        this.where(repo),
        await this.auth.hasCredential(this.authHost(repo)),
        `401 ${detail}`,
        this.authHost(repo),
      )
    }
    return res
  }

  /**
   * A request to a full URL on `repo`'s registry (an upload session's Location) with the auth handshake for the given
   * token scopes (a cross-repository mount also needs pull on the source). A streamed body cannot be sent twice: when
   * such a request meets a 401 it learns the challenge and returns the 401, for the caller to send again (an upload
   * continues from the session's offset).
   */
  async requestUrl(repo: Repo, url: string, init: HttpRequest, scopes: string[]): Promise<HttpResponse> {
    const scope = scopes.join(' ')
    let sent: string | undefined
    const send = async () => {
      sent = await this.auth.header(this.authHost(repo), scope, init.signal)
      const headers = { ...init.headers, ...(sent ? { authorization: sent } : {}) }
      return await this.http.fetch(url, { ...init, headers })
    }
    let res = await send()
    const body = init.body
    const replayable =
      body === undefined || body === null || typeof body === 'string' || Buffer.isBuffer(body)
    if (
      res.status === 401 &&
      (await this.auth.learn(this.authHost(repo), res.header('www-authenticate'), scope, sent))
    ) {
      if (!replayable) return res
      await res.body.dump()
      res = await send()
    }
    if (res.status === 401) throw await this.authFailure(repo, res)
    return res
  }

  /** The URL of `path` under a repository (`blobs/uploads/`, `manifests/<ref>`). */
  repositoryUrl(repo: Repo, path: string): string {
    return this.url(repo, path)
  }

  /** The token scope for `actions` (pull, or pull,push) on a repository. */
  scope(repo: Repo, actions: string): string {
    return `repository:${this.scopeName(repo)}:${actions}`
  }

  /** A URL the registry returned (a Location header), made absolute against the registry's endpoint. */
  resolveUrl(repo: Repo, location: string): string {
    return new URL(location, `${this.endpoint(repo.registry).origin}/`).toString()
  }

  /** The E_AUTH error for a 401 answer: names the registry and how to give credentials. */
  async authFailure(repo: Repo, res: HttpResponse): Promise<AirgapError> {
    const detail = await describeErrorBody(res)
    return authError(
      this.where(repo),
      await this.auth.hasCredential(this.authHost(repo)),
      `401 ${detail}`,
      this.authHost(repo),
    )
  }

  private scopeName(repo: Repo): string {
    const prefix = this.endpoint(repo.registry).prefix
    return prefix ? `${prefix}/${repo.repository}` : repo.repository
  }

  /**
   * GET a manifest by tag or digest; verifies it against the digest asked for (or the one the registry sent). An answer
   * that breaks off part-way is asked for again.
   */
  async getManifest(repo: Repo, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const name = `${repo.registry}/${repo.repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`
    return await withWholeBodyRetries(
      `the manifest of ${name}`,
      () => this.getManifestOnce(repo, reference, signal),
      { policy: this.http.retryPolicy, signal },
    )
  }

  private async getManifestOnce(
    repo: Repo,
    reference: string,
    signal?: AbortSignal,
  ): Promise<FetchedManifest> {
    const res = await this.request(repo, `manifests/${reference}`, {
      headers: { accept: MANIFEST_ACCEPT },
      signal,
    })
    const name = `${repo.registry}/${repo.repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`
    if (res.status !== 200) throw await this.failure(repo, res, `image ${name}`)
    const length = Number(res.header('content-length') ?? 0)
    if (length > MAX_MANIFEST_BYTES) {
      await res.body.dump()
      throw new AirgapError(
        'E_REMOTE',
        `The manifest of ${name} is ${length} bytes, over the ${MAX_MANIFEST_BYTES} byte limit.`,
      )
    }
    const bytes = await readCapped(res.body, MAX_MANIFEST_BYTES, name)
    const digest = sha256Digest(bytes)
    const expected = reference.startsWith('sha256:') ? reference : res.header('docker-content-digest')
    if (expected?.startsWith('sha256:') && expected !== digest) {
      throw new AirgapError(
        'E_INTEGRITY',
        `The manifest of ${name} does not match its digest: expected ${expected}, got ${digest}.`,
        {
          hints: ['A mirror or proxy may be altering content; try without it.'],
        },
      )
    }
    const mediaType = (res.header('content-type') ?? '').split(';')[0]!.trim() || sniffMediaType(bytes)
    return { bytes, mediaType: mediaType === 'application/json' ? sniffMediaType(bytes) : mediaType, digest }
  }

  /** The size of a blob if the registry has it, else undefined. */
  async blobSize(repo: Repo, digest: string, signal?: AbortSignal): Promise<number | undefined> {
    const res = await this.request(repo, `blobs/${digest}`, { method: 'HEAD', signal })
    await res.body.dump()
    if (res.status === 404) return undefined
    if (res.status !== 200)
      throw await this.failure(repo, res, `blob ${digest} of ${repo.registry}/${repo.repository}`)
    return Number(res.header('content-length'))
  }

  /**
   * Opens a blob stream, from `offset` on when given (HTTP Range). `partial` tells whether the server honoured the
   * range; when it did not, the stream starts at byte 0 and the caller must start over.
   */
  async openBlob(
    repo: Repo,
    digest: string,
    options: { offset?: number; signal?: AbortSignal } = {},
  ): Promise<{ body: Readable; partial: boolean; response: HttpResponse }> {
    const offset = options.offset ?? 0
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {}
    const res = await this.request(repo, `blobs/${digest}`, { headers, signal: options.signal })
    if (res.status === 200 || res.status === 206)
      return { body: res.body, partial: res.status === 206, response: res }
    throw await this.failure(repo, res, `blob ${digest} of ${repo.registry}/${repo.repository}`)
  }

  /** Turns a non-success answer into an error that says what was asked, of whom, and what came back. */
  async failure(repo: Repo, res: HttpResponse, what: string): Promise<AirgapError> {
    const detail = await describeErrorBody(res)
    const where = this.where(repo)
    if (res.status === 404) {
      return new AirgapError('E_REMOTE', `The ${what} was not found on ${where}: ${detail}.`, {
        hints: [
          'Check the name and tag; the registry may have moved or deleted it (e.g. bitnami → bitnamilegacy).',
        ],
        data: { registry: repo.registry, repository: repo.repository, status: 404 },
      })
    }
    if (res.status === 403)
      return authError(
        where,
        await this.auth.hasCredential(this.authHost(repo)),
        `403 ${detail}`,
        this.authHost(repo),
      )
    return new AirgapError(
      'E_REMOTE',
      `Asking ${where} for the ${what} failed: HTTP ${res.status} ${detail}.`,
      {
        data: { registry: repo.registry, repository: repo.repository, status: res.status },
      },
    )
  }
}

async function readCapped(body: Readable, cap: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > cap) {
      body.destroy()
      throw new AirgapError('E_REMOTE', `The manifest of ${what} is over the ${cap} byte limit.`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

function sniffMediaType(bytes: Buffer): string {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown }
    if (parsed.mediaType) return parsed.mediaType
    return parsed.manifests
      ? 'application/vnd.oci.image.index.v1+json'
      : 'application/vnd.oci.image.manifest.v1+json'
  } catch {
    return 'application/octet-stream'
  }
}

/** The OCI error body ({"errors":[{"code","message"}]}) in one line, or the status text. */
export async function describeErrorBody(res: HttpResponse): Promise<string> {
  let text = ''
  try {
    text = (await res.body.text()).slice(0, 2000)
  } catch {}
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] }
    if (parsed.errors?.length)
      return parsed.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ')
  } catch {}
  return text.trim().slice(0, 200) || `HTTP ${res.status}`
}
