import { Agent, type IncomingMessage, request, type ServerResponse } from 'node:http'
import { BUNDLE_JSON } from '../bundle/layout.js'
import { BundleReader } from '../bundle/reader.js'
import type { EventSink, ProgressEvent } from '../events/types.js'
import { sha256Digest } from '../oci/digest.js'
import { CLIENT_ADDRESS_HEADER } from './registry-auth.js'
import { BundleContent } from './registry-content.js'
import { isHostComponent, RepositoryNames } from './registry-names.js'
import { sendContent } from './registry-request.js'
import { type SiteServer, startSiteServer } from './site-server.js'

/**
 * A worker of `serve --workers N` (serve-workers.ts starts them): one process of several on the server's public port,
 * each on a core of its own. A worker answers itself only what most of a pull is and what needs no state: an anonymous
 * GET or HEAD of a blob of the bundle, under a repository of the bundle named in full (`docker.io/library/nginx`, or
 * with containerd's `?ns=`), without a Range. Everything else (manifests and tags, pushes into the overlay, logins and
 * their failure counter, node setup files, errors) it hands on, as it came, to the primary over a unix socket, naming
 * its client in CLIENT_ADDRESS_HEADER; the primary answers as a single serve would. A request with credentials is
 * always handed on: a worker that checked passwords itself would tell an address the primary has locked out when a
 * guess is right.
 */
export interface ServeWorkerSettings {
  bundle: string
  base?: string
  /** The digest of the bundle.json the primary verified and serves: a worker that opens another bundle stops. */
  bundleJsonDigest: string
  host: string
  port: number
  tls?: { certPem: string; keyPem: string }
  anonymousPull: boolean
  /** The primary's unix socket. */
  primarySocket: string
}

export interface ServeWorker {
  close(): Promise<void>
}

export async function startServeWorker(settings: ServeWorkerSettings, sink: EventSink): Promise<ServeWorker> {
  const reader = await BundleReader.open(settings.bundle, settings.base ? { base: settings.base } : {})
  let server: SiteServer | undefined
  try {
    const bundleJson = sha256Digest(await reader.read(BUNDLE_JSON))
    if (bundleJson !== settings.bundleJsonDigest)
      throw new Error(
        `${settings.bundle} is no longer the bundle the server verified (its bundle.json changed)`,
      )
    const content = await BundleContent.load(reader)
    const names = new RepositoryNames(content.repositories.keys())
    const agent = new Agent({ keepAlive: true })

    const bundleBlob = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
      const method = req.method ?? 'GET'
      if ((method !== 'GET' && method !== 'HEAD') || !settings.anonymousPull) return false
      if (req.headers.authorization !== undefined || req.headers.range !== undefined) return false
      const url = new URL(req.url ?? '/', 'http://registry.invalid')
      const m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname)
      if (!m) return false
      const path = m[1]!
      const ns = url.searchParams.get('ns') ?? ''
      const first = path.split('/')[0]!
      const named = (path.includes('/') && isHostComponent(first)) || ns !== ''
      if (!named || names.resolve(path, ns || undefined).kind !== 'found') return false
      const blob = content.blob(m[2]!)
      if (!blob) return false
      res.setHeader('Docker-Distribution-API-Version', 'registry/2.0')
      await sendContent({ req, res, method, sink }, blob, true)
      return true
    }

    const handOn = (req: IncomingMessage, res: ServerResponse): Promise<boolean> =>
      new Promise((resolve) => {
        const headers = { ...req.headers, [CLIENT_ADDRESS_HEADER]: req.socket.remoteAddress ?? 'unknown' }
        delete headers.connection
        const upstream = request({
          socketPath: settings.primarySocket,
          method: req.method,
          path: req.url,
          headers,
          agent,
        })
        upstream.on('response', (answer) => {
          const back = { ...answer.headers }
          delete back.connection
          delete back['keep-alive']
          res.writeHead(answer.statusCode ?? 502, back)
          answer.pipe(res)
          answer.on('error', () => res.destroy())
          res.on('close', () => {
            if (!answer.complete) answer.destroy()
            resolve(true)
          })
        })
        upstream.on('error', (error) => {
          if (!res.headersSent) {
            res.writeHead(502, { 'content-type': 'text/plain' }).end('the site server is not answering\n')
          } else res.destroy()
          sink.emit({
            type: 'log',
            level: 'warn',
            code: 'W_SERVE_REQUEST',
            message: `${req.method} ${req.url} failed: ${error.message}`,
            data: { method: req.method ?? '', url: req.url ?? '' },
          })
          resolve(true)
        })
        req.pipe(upstream)
      })

    server = await startSiteServer({
      host: settings.host,
      port: settings.port,
      tls: settings.tls,
      handlers: [bundleBlob, handOn],
      sink,
    })
    const open = server
    return {
      close: async () => {
        await open.close()
        agent.destroy()
        await reader.close()
      },
    }
  } catch (error) {
    await server?.close()
    await reader.close()
    throw error
  }
}

/** A sink that sends a worker's events to the primary, which emits them into its own. */
export function primarySink(send: (message: unknown) => void): EventSink {
  return { emit: (event: ProgressEvent) => send({ type: 'event', event }) }
}
