import { constants } from 'node:crypto'
import { chmod } from 'node:fs/promises'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { DEFAULT_CIPHERS } from 'node:tls'
import { AirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'

/**
 * The one server of a site: a single port, HTTPS with the site's certificate (or plain HTTP when asked), handing each
 * request to the first handler that takes it (the registry under /v2/, then the file server). One port means one
 * firewall rule, one certificate and one address for containerd, apt and helm alike.
 *
 * Timeouts (Node's semantics): a client must send its request headers within `headersMs` (default 60 s), so idle
 * half-open requests cannot pile up. The whole request is not bounded in time (`requestTimeout` 0), because it covers
 * receiving the body, and pushing a blob of several GB over a site link takes as long as it takes; instead a
 * connection on which nothing moves either way for `idleMs` (default 5 minutes) is closed, which ends stalled uploads
 * and downloads alike without limiting slow but moving ones. Over TLS the server chooses the cipher (CIPHERS).
 */
export type SiteRequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

export interface SiteServerOptions {
  host: string
  port: number
  /**
   * Listen on this unix socket instead of host and port, plain HTTP, readable by the owner only: where the primary of
   * a serve with workers takes the requests its workers hand on (serve-workers.ts).
   */
  socketPath?: string
  tls?: { certPem: string; keyPem: string }
  handlers: SiteRequestHandler[]
  sink: EventSink
  timeouts?: { headersMs?: number; idleMs?: number }
}

export interface SiteServer {
  /** The address it listens on, e.g. https://0.0.0.0:8443 */
  listenUrl: string
  port: number
  close(): Promise<void>
}

/**
 * The TLS ciphers in the server's order of preference: AES-128-GCM first (as Go's servers, distribution among them,
 * choose), where Node would take the client's first choice, which for OpenSSL clients such as curl is AES-256-GCM.
 * AES-128-GCM is about 20 % less work per byte for the server and for every node pulling from it (openssl speed,
 * docs/benchmarks.md). A client that puts ChaCha20-Poly1305 first (one without AES instructions) still gets it
 * (SSL_OP_PRIORITIZE_CHACHA).
 */
const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  ...DEFAULT_CIPHERS.split(':').filter((c) => c !== 'TLS_AES_128_GCM_SHA256'),
].join(':')

export async function startSiteServer(options: SiteServerOptions): Promise<SiteServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      for (const handler of options.handlers) if (await handler(req, res)) return
      if (!res.headersSent) res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    } catch (error) {
      options.sink.emit({
        type: 'log',
        level: 'warn',
        code: 'W_SERVE_REQUEST',
        message: `${req.method} ${req.url} failed: ${(error as Error).message}`,
        data: { method: req.method ?? '', url: req.url ?? '' },
      })
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n')
      else res.destroy()
    }
  }
  const listener = (req: IncomingMessage, res: ServerResponse) => void handle(req, res)
  const headersMs = options.timeouts?.headersMs ?? 60_000
  const idleMs = options.timeouts?.idleMs ?? 300_000
  const settings = {
    headersTimeout: headersMs,
    requestTimeout: 0,
    // How often Node looks for requests whose headers are late (its default, 30 s, would let them run long).
    connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.floor(headersMs / 4))),
    keepAliveTimeout: 65_000,
  }
  const server: Server = options.tls
    ? createHttpsServer(
        {
          ...settings,
          cert: options.tls.certPem,
          key: options.tls.keyPem,
          ciphers: CIPHERS,
          honorCipherOrder: true,
          secureOptions: constants.SSL_OP_PRIORITIZE_CHACHA,
        },
        listener,
      )
    : createHttpServer(settings, listener)
  server.setTimeout(idleMs, (socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(
          new AirgapError('E_ENVIRONMENT', `Port ${options.port} on ${options.host} is already in use.`, {
            hints: ['Stop what listens there (ss -ltnp), or choose another port with --port.'],
            data: { port: options.port, host: options.host },
          }),
        )
      } else if (error.code === 'EACCES') {
        reject(
          new AirgapError(
            'E_ENVIRONMENT',
            `Not allowed to listen on port ${options.port} (ports below 1024 need root).`,
          ),
        )
      } else reject(error)
    })
    if (options.socketPath) server.listen(options.socketPath, () => resolve())
    else server.listen(options.port, options.host, () => resolve())
  })
  if (options.socketPath) await chmod(options.socketPath, 0o600)
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  return {
    listenUrl: options.socketPath
      ? `unix:${options.socketPath}`
      : `${options.tls ? 'https' : 'http'}://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
