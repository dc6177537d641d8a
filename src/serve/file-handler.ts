import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { BundleReader } from '../bundle/reader.js'
import { contentRange, parseRange } from '../net/http-range.js'
import type { NodeSetupFiles } from './node-setup.js'

/**
 * The site file server: everything of the site server that is not the registry (`/v2/…`), read-only and straight out
 * of the bundle file (members are byte ranges of the tar; nothing is extracted):
 *
 *   /charts/index.yaml, /charts/<name>-<version>.tgz   the Helm chart repository (helm repo add site https://…/charts)
 *   /files/<path>                                      the bundle's files
 *   /repo/<path>                                       package repositories (apt, yum) under repo/ in the bundle
 *   /ca.crt                                            the site CA
 *   /node-setup/, /node-setup/<file>                   generated node setup files, with a plain-text index
 *
 * GET and HEAD, single Range requests (206, 416; the rules are in net/http-range.ts), ETag = the member's sha256 (If-None-Match, If-Range), and a
 * Content-Type by extension. There are no directory listings (but the /node-setup/ index).
 *
 * Safety by construction: a URL path only ever becomes a lookup key in the bundle's member index (or the node setup
 * map); the local file system is never touched for content. The path is decoded exactly once, and a path with `.` or
 * `..` segments, a backslash, a NUL or other control character, an empty segment (`//`), or bad percent-encoding is
 * refused with 400 before any lookup.
 */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

export interface FileHandlerOptions {
  reader: BundleReader
  /** The site CA (PEM), served at /ca.crt. */
  caPem?: string
  nodeSetup: NodeSetupFiles
  /** Called when streaming a member fails after the response started (a truncated bundle, a broken disk). */
  onError?: (error: unknown, path: string) => void
}

/** What a path resolves to: bytes of known size and digest, from the bundle or from memory. */
interface Resource {
  size: number
  sha256?: string
  contentType: string
  /** Bytes [start, end] inclusive. */
  read(start: number, end: number): AsyncIterable<Buffer>
}

/** Bundle members are streamed in chunks of this size (backpressure comes from the response). */
const CHUNK = 256 << 10

/** URL prefix → member prefix in the bundle. */
const BUNDLE_ROUTES: [string, string][] = [
  ['/charts/', 'charts/'],
  ['/files/', 'files/'],
  ['/repo/', 'repo/'],
]

export function createFileHandler(options: FileHandlerOptions): RequestHandler {
  const { reader } = options
  const digests = new Map(reader.metadata.members.map((m) => [m.path, m.sha256]))
  const memory = new Map<string, Resource>()
  const addMemory = (path: string, content: string) =>
    memory.set(path, bufferResource(Buffer.from(content), contentTypeOf(path)))
  if (options.caPem !== undefined) addMemory('/ca.crt', options.caPem)
  // Node setup files are read at each request: the server refreshes them when install pushes the bundle (Harbor).
  const nodeSetupFile = (path: string): Resource | undefined => {
    if (path === '/node-setup' || path === '/node-setup/') {
      const index = [...options.nodeSetup.keys()].sort().join('\n')
      return bufferResource(Buffer.from(`${index}${index ? '\n' : ''}`), 'text/plain; charset=utf-8')
    }
    const content = path.startsWith('/node-setup/') ? options.nodeSetup.get(path.slice(12)) : undefined
    return content === undefined ? undefined : bufferResource(Buffer.from(content), contentTypeOf(path))
  }
  memory.set(
    '/',
    bufferResource(
      Buffer.from(
        'astrago-airgap site server\n\n/v2/          OCI registry\n/charts/      Helm chart repository (index.yaml)\n/files/       bundle files\n/repo/        package repositories\n/ca.crt       site CA\n/node-setup/  node setup files\n',
      ),
      'text/plain; charset=utf-8',
    ),
  )

  const lookup = (path: string): Resource | undefined => {
    const fromMemory = memory.get(path) ?? nodeSetupFile(path)
    if (fromMemory) return fromMemory
    for (const [prefix, memberPrefix] of BUNDLE_ROUTES) {
      if (!path.startsWith(prefix) || path.length === prefix.length || path.endsWith('/')) continue
      const member = `${memberPrefix}${path.slice(prefix.length)}`
      const location = reader.locate(member)
      if (!location) return undefined
      return {
        size: location.size,
        sha256: digests.get(member),
        contentType: contentTypeOf(member),
        read: (start, end) => readMember(reader, location.offset + start, end - start + 1),
      }
    }
    return undefined
  }

  return async (req, res) => {
    const rawUrl = req.url ?? '/'
    const rawPath = rawUrl.split(/[?#]/, 1)[0]!
    if (rawPath === '/v2' || rawPath.startsWith('/v2/')) return false

    const parsed = parseRequestPath(rawPath)
    if (!parsed.ok) {
      sendText(res, req, 400, `bad request: ${parsed.reason}\n`)
      return true
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      sendText(res, req, 405, 'method not allowed: this server is read-only\n')
      return true
    }
    const resource = lookup(parsed.path)
    if (!resource) {
      sendText(res, req, 404, 'not found\n')
      return true
    }
    await serveResource(req, res, resource, parsed.path, options.onError)
    return true
  }
}

/** The request path, decoded once and checked, or why it is refused. */
export function parseRequestPath(
  rawPath: string,
): { ok: true; path: string } | { ok: false; reason: string } {
  if (!rawPath.startsWith('/')) return { ok: false, reason: 'the path must start with /' }
  if (rawPath.includes('//')) return { ok: false, reason: 'empty path segment' }
  let path: string
  try {
    path = decodeURIComponent(rawPath)
  } catch {
    return { ok: false, reason: 'malformed percent-encoding' }
  }
  if (path.includes('\\')) return { ok: false, reason: 'backslash in the path' }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(path)) return { ok: false, reason: 'control character in the path' }
  if (path.includes('//')) return { ok: false, reason: 'empty path segment' }
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) {
    return { ok: false, reason: 'dot segment in the path' }
  }
  return { ok: true, path }
}

async function serveResource(
  req: IncomingMessage,
  res: ServerResponse,
  resource: Resource,
  path: string,
  onError: FileHandlerOptions['onError'],
): Promise<void> {
  const etag = resource.sha256 ? `"${resource.sha256}"` : undefined
  res.setHeader('Content-Type', resource.contentType)
  res.setHeader('Accept-Ranges', 'bytes')
  res.setHeader('Cache-Control', 'no-cache')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  if (etag) res.setHeader('ETag', etag)

  if (etag && matchesEtag(req.headers['if-none-match'], etag)) {
    res.statusCode = 304
    res.end()
    return
  }

  let start = 0
  let end = resource.size - 1
  let status = 200
  const rangeHeader = req.headers.range
  const ifRange = req.headers['if-range']
  const rangeApplies =
    rangeHeader !== undefined && (ifRange === undefined || (etag !== undefined && ifRange === etag))
  if (rangeApplies) {
    const range = parseRange(rangeHeader, resource.size)
    if (range === 'unsatisfiable') {
      res.statusCode = 416
      res.setHeader('Content-Range', contentRange(resource.size))
      res.setHeader('Content-Type', 'text/plain; charset=utf-8')
      res.removeHeader('ETag')
      const body = 'range not satisfiable\n'
      res.setHeader('Content-Length', Buffer.byteLength(body))
      res.end(req.method === 'HEAD' ? undefined : body)
      return
    }
    if (range) {
      ;({ start, end } = range)
      status = 206
      res.setHeader('Content-Range', contentRange(resource.size, range))
    }
  }
  const length = resource.size === 0 ? 0 : end - start + 1
  res.statusCode = status
  res.setHeader('Content-Length', length)
  if (req.method === 'HEAD' || length === 0) {
    res.end()
    return
  }
  try {
    await pipeline(Readable.from(resource.read(start, end)), res)
  } catch (error) {
    // The client went away, or the bundle could not be read: the status line is already sent, so the only thing
    // left to do is to cut the connection, which tells the client the body is incomplete.
    res.destroy()
    if (!isClientGone(error, res)) onError?.(error, path)
  }
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false
  if (header.trim() === '*') return true
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)
}

async function* readMember(reader: BundleReader, offset: number, length: number): AsyncGenerator<Buffer> {
  for (let done = 0; done < length; ) {
    const size = Math.min(CHUNK, length - done)
    yield await reader.volumes.read(offset + done, size)
    done += size
  }
}

function bufferResource(bytes: Buffer, contentType: string): Resource {
  return {
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    contentType,
    async *read(start, end) {
      yield bytes.subarray(start, end + 1)
    },
  }
}

function sendText(res: ServerResponse, req: IncomingMessage, status: number, body: string): void {
  res.statusCode = status
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Content-Length', Buffer.byteLength(body))
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.end(req.method === 'HEAD' ? undefined : body)
}

function isClientGone(error: unknown, res: ServerResponse): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return (
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ERR_STREAM_DESTROYED' ||
    res.socket?.destroyed === true
  )
}

const CONTENT_TYPES: [RegExp, string][] = [
  [/\.ya?ml$/, 'application/yaml'],
  [/\.(tgz|tar\.gz|gz)$/, 'application/gzip'],
  [/\.json$/, 'application/json'],
  [/\.sh$/, 'text/x-shellscript; charset=utf-8'],
  [/\.(txt|md)$/, 'text/plain; charset=utf-8'],
  [/\.toml$/, 'application/toml'],
  [/\.(crt|pem)$/, 'application/x-pem-file'],
  [/\.(asc|gpg|key)$/, 'application/pgp-keys'],
  [/\.deb$/, 'application/vnd.debian.binary-package'],
  [/\.rpm$/, 'application/x-rpm'],
  [/\.xml$/, 'application/xml'],
  [/\.(xz)$/, 'application/x-xz'],
  [/\.(bz2)$/, 'application/x-bzip2'],
  [/\.zst$/, 'application/zstd'],
  [/\.tar$/, 'application/x-tar'],
  [/(^|\/)(Release|InRelease|Packages|Sources)$/, 'text/plain; charset=utf-8'],
]

export function contentTypeOf(path: string): string {
  for (const [pattern, type] of CONTENT_TYPES) if (pattern.test(path)) return type
  return 'application/octet-stream'
}
