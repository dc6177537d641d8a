import type { Readable } from 'node:stream'
import { rootCertificates } from 'node:tls'
import { setFlagsFromString } from 'node:v8'
import type { Dispatcher } from 'undici'
import { AirgapError } from '../errors.js'
import {
  defaultRetryPolicy,
  isRetryableStatus,
  isTransientNetworkError,
  parseRetryAfter,
  RetryableError,
  type RetryPolicy,
  withRetries,
} from './retry.js'
import { Agent, request } from './undici-parts.js'

// undici parses HTTP with llhttp compiled to WebAssembly, on the first connection. V8 compiles it twice by default,
// quickly (Liftoff) and then optimised (TurboFan) in the background; the optimising compile is a transient 15–35 MiB of
// memory, which made the start of every command the peak of a small run (a push with nothing to send: 112 → 77 MiB;
// docs/benchmarks.md). The parser's time is a few calls per response (bodies are handed over as slices, not parsed),
// so the quick compile alone is enough; llhttp is the only WebAssembly the CLI runs. Set before undici compiles it.
setFlagsFromString('--liftoff-only')

/**
 * The one HTTP client of astrago-airgap (registries, chart repositories, file downloads). It is undici's `request`
 * over a keep-alive connection pool (see docs/benchmarks.md for why undici), with bounded retries on transport errors,
 * 429 and 5xx, honouring Retry-After. Bodies are streams: nothing here buffers a blob.
 */

export interface HttpOptions {
  /** Extra CA certificates (PEM) to trust, e.g. a corporate mirror's. */
  ca?: string[]
  /** Hosts (host or host:port) whose TLS certificate is not verified. */
  insecureHosts?: string[]
  retry?: RetryPolicy
  userAgent?: string
  /** Connections per origin. */
  connections?: number
  onRetry?: (info: { url: string; reason: string; delayMs: number }) => void
  /** URL prefix → replacement: a mirror standing in for a web server (charts, files). */
  urlMirrors?: Record<string, string>
}

/** Applies the longest matching URL-prefix mirror. */
export function mirrorUrl(url: string, mirrors: Record<string, string> | undefined): string {
  if (!mirrors) return url
  let best = ''
  for (const prefix of Object.keys(mirrors)) {
    if (url.startsWith(prefix) && prefix.length > best.length) best = prefix
  }
  return best ? mirrors[best]!.replace(/\/+$/, '') + url.slice(best.replace(/\/+$/, '').length) : url
}

export interface HttpRequest {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  headers?: Record<string, string>
  body?: string | Buffer | Readable | null
  signal?: AbortSignal
  /** Retry transport errors and 5xx/429 (default: for GET and HEAD only). */
  retry?: boolean
}

export interface HttpResponse {
  url: string
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Readable & { text(): Promise<string>; json(): Promise<unknown>; dump(): Promise<void> }
  header(name: string): string | undefined
}

export class HttpClient {
  private readonly secure: Dispatcher
  private readonly insecure: Dispatcher | undefined
  private readonly insecureHosts: Set<string>
  readonly retryPolicy: RetryPolicy

  constructor(private readonly options: HttpOptions = {}) {
    const common = {
      connections: options.connections ?? 16,
      keepAliveTimeout: 30_000,
      bodyTimeout: 120_000,
      headersTimeout: 60_000,
    }
    // Extra CAs are added to Node's trusted roots, not put in their place.
    this.secure = new Agent({
      ...common,
      connect: options.ca?.length ? { ca: [...rootCertificates, ...options.ca] } : {},
    })
    this.insecureHosts = new Set(options.insecureHosts ?? [])
    this.insecure = this.insecureHosts.size
      ? new Agent({ ...common, connect: { rejectUnauthorized: false } })
      : undefined
    this.retryPolicy = options.retry ?? defaultRetryPolicy
  }

  private dispatcherFor(url: URL): Dispatcher {
    if (this.insecure && (this.insecureHosts.has(url.host) || this.insecureHosts.has(url.hostname)))
      return this.insecure
    return this.secure
  }

  /** One request, no retries; transport failures become AirgapError E_REMOTE (or RetryableError when transient). */
  async once(url: string, init: HttpRequest = {}): Promise<HttpResponse> {
    const target = new URL(mirrorUrl(url, this.options.urlMirrors))
    const method = init.method ?? 'GET'
    let res: Dispatcher.ResponseData<unknown>
    try {
      res = await request(this.dispatcherFor(target), target, {
        method,
        headers: { 'user-agent': this.options.userAgent ?? 'astrago-airgap', ...init.headers },
        body: init.body ?? undefined,
        signal: init.signal,
      })
    } catch (error) {
      if (init.signal?.aborted) throw init.signal.reason ?? error
      const reason = describeNetworkError(error)
      if (isTransientNetworkError(error))
        throw new RetryableError(`${method} ${url}: ${reason}`, undefined, { cause: error })
      throw new AirgapError('E_REMOTE', `${method} ${url} failed: ${reason}`, {
        cause: error,
        hints: ['Check that the host is reachable from this machine, or point at a mirror with --mirror.'],
      })
    }
    const headers = res.headers as Record<string, string | string[] | undefined>
    return {
      url,
      status: res.statusCode,
      headers,
      body: res.body as unknown as HttpResponse['body'],
      header: (name) => {
        const value = headers[name.toLowerCase()]
        return Array.isArray(value) ? value[0] : value
      },
    }
  }

  /**
   * A request that follows redirects (dropping the Authorization header when the host changes, as registries
   * redirect blob downloads to object storage) and retries transient failures.
   */
  async fetch(url: string, init: HttpRequest = {}): Promise<HttpResponse> {
    const method = init.method ?? 'GET'
    const retry = init.retry ?? (method === 'GET' || method === 'HEAD')
    const attempt = async () => {
      let current = url
      let headers = init.headers ?? {}
      for (let hop = 0; hop < 10; hop++) {
        const res = await this.once(current, { ...init, headers })
        if ([301, 302, 303, 307, 308].includes(res.status) && res.header('location')) {
          await res.body.dump()
          const next = new URL(res.header('location')!, current)
          if (next.host !== new URL(current).host) {
            const { authorization: _dropped, ...rest } = headers
            headers = rest
          }
          current = next.toString()
          continue
        }
        if (retry && isRetryableStatus(res.status)) {
          await res.body.dump()
          throw new RetryableError(
            `${method} ${current}: HTTP ${res.status}`,
            parseRetryAfter(res.header('retry-after')),
          )
        }
        return res
      }
      throw new AirgapError('E_REMOTE', `${method} ${url}: too many redirects`)
    }
    if (!retry) return await attempt()
    try {
      return await withRetries(attempt, {
        policy: this.retryPolicy,
        signal: init.signal,
        onRetry: (error, delayMs) => this.options.onRetry?.({ url, reason: error.message, delayMs }),
      })
    } catch (error) {
      if (error instanceof RetryableError) {
        throw new AirgapError(
          'E_REMOTE',
          `${error.message} (gave up after ${this.retryPolicy.retries + 1} attempts)`,
          {
            cause: error,
            hints: ['The server kept failing; check it, or try again later (completed work is kept).'],
          },
        )
      }
      throw error
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.secure.close(), this.insecure?.close()])
  }
}

function describeNetworkError(error: unknown): string {
  const parts: string[] = []
  let current: unknown = error
  for (let depth = 0; current && depth < 4; depth++) {
    const e = current as { code?: string; message?: string }
    if (e.message && !parts.includes(e.message)) parts.push(e.code ? `${e.message} (${e.code})` : e.message)
    current = (current as { cause?: unknown }).cause
  }
  return parts.join(': ') || String(error)
}
