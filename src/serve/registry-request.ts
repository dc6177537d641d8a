import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import type { EventSink } from '../events/types.js'
import { contentRange, parseRange } from '../net/http-range.js'
import type { Content, RegistryState } from './registry-content.js'
import { RegistryError } from './registry-errors.js'

/**
 * What every handler of the site registry shares: the request as the router hands it on (with the authenticated user
 * and the registry's state), the repository a request names, and the ways to answer: JSON, an empty body, or content
 * streamed with a byte range when asked for (the Range rules are in net/http-range.ts).
 */
export interface RegistryRequest {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  /** Upper case. */
  method: string
  /** The authenticated user, undefined for anonymous. */
  user: string | undefined
  state: RegistryState
  sink: EventSink
}

/** Refuses a method the endpoint does not have (405 UNSUPPORTED, with Allow). */
export function allow(r: RegistryRequest, methods: string[]): void {
  if (methods.includes(r.method)) return
  r.res.setHeader('Allow', methods.join(', '))
  r.req.resume()
  throw new RegistryError('UNSUPPORTED', `${r.method} is not supported on ${r.url.pathname}.`)
}

/** The repository a request reads from: it must exist. */
export function existingRepository(r: RegistryRequest, path: string): string {
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
export function writableRepository(r: RegistryRequest, path: string): string {
  const resolved = r.state.names.resolve(path, r.url.searchParams.get('ns') ?? undefined)
  if (resolved.kind === 'new') return resolved.name
  return existingRepository(r, path)
}

/** A Location on this registry; keeps `?ns=` so a follow-up request resolves the same repository. */
export function location(r: RegistryRequest, path: string): string {
  const ns = r.url.searchParams.get('ns')
  return ns ? `${path}?ns=${encodeURIComponent(ns)}` : path
}

export function contentLength(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length']
  return value === undefined || !/^\d+$/.test(value) ? undefined : Number(value)
}

export function hasBody(req: IncomingMessage): boolean {
  return (contentLength(req) ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined
}

export function sendJson(
  r: RegistryRequest,
  status: number,
  value: unknown,
  contentType = 'application/json',
): void {
  const body = Buffer.from(JSON.stringify(value))
  r.res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': body.length })
  r.res.end(r.method === 'HEAD' ? undefined : body)
}

export function sendEmpty(r: RegistryRequest, status: number): void {
  r.res.writeHead(status, { 'Content-Length': 0 })
  r.res.end()
}

/** Sends a manifest or blob: HEAD without a body, GET streamed, a single byte range as 206 when `ranges` allows. */
export async function sendContent(
  r: Pick<RegistryRequest, 'req' | 'res' | 'method' | 'sink'>,
  content: Content,
  ranges: boolean,
): Promise<void> {
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
      res.setHeader('Content-Range', contentRange(content.size))
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
      res.setHeader('Content-Range', contentRange(content.size, range))
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
    if (content.send) await content.send(start, length, res)
    else await pipeline(content.open(start, end), res)
  } catch (error) {
    const code = (error as { code?: string }).code
    if (code !== 'ERR_STREAM_PREMATURE_CLOSE' && !res.destroyed) {
      r.sink.emit({
        type: 'log',
        level: 'warn',
        code: 'W_REGISTRY_READ',
        message: `Registry: sending ${content.digest} failed: ${(error as Error).message}`,
        data: { digest: content.digest },
      })
    }
    res.destroy()
  }
}
