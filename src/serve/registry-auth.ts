import type { IncomingMessage } from 'node:http'
import { AirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'
import { UserStore } from './htpasswd.js'
import { type FailedAuthLimit, FailedAuthLimiter } from './registry-auth-limit.js'
import { RegistryError } from './registry-errors.js'

/**
 * Who may do what on the site registry. Basic auth against the bcrypt htpasswd file and the users map; the realm is
 * "astrago-airgap".
 *
 * - Pull (GET, HEAD) is anonymous unless `anonymousPull` is false; everything else needs a user. Without any user the
 *   registry is read-only (DENIED).
 * - When users exist, an anonymous ping (`GET /v2/`) answers 401 with the Basic challenge even if pull is anonymous:
 *   clients (skopeo, docker) learn from that ping whether to send their credentials with later pushes, and pullers
 *   without credentials (skopeo, distribution's pull-through cache, containerd) then pull anonymously all the same.
 * - An empty user name (skopeo sends `Basic Og==` when it has no credentials) is anonymous; wrong credentials are
 *   refused (401) and reported as a warning event.
 * - A client address that failed too often recently (registry-auth-limit.ts) gets 429 with Retry-After instead of a
 *   password check, unless its credentials are already known to be good.
 */
export interface RegistryAuthOptions {
  /** bcrypt htpasswd file; reread when it changes. */
  htpasswdFile?: string
  /** user → bcrypt hash, in addition to the file. */
  users?: Record<string, string>
  /** Pull without credentials (default true). */
  anonymousPull?: boolean
  /** Failed authentications allowed per client address (default 10 a minute). */
  failedAuthLimit?: FailedAuthLimit
}

export const REGISTRY_REALM = 'astrago-airgap'

/** The user of a request, or undefined for anonymous; throws UNAUTHORIZED or DENIED when it is not allowed. */
export type Authenticate = (req: IncomingMessage, method: string, url: URL) => Promise<string | undefined>

/** The authentication of one registry; refuses a configuration under which nobody could pull. */
export function createAuthenticator(options: RegistryAuthOptions, sink: EventSink): Authenticate {
  const users = new UserStore({ htpasswdFile: options.htpasswdFile, users: options.users, sink })
  const anonymousPull = options.anonymousPull ?? true
  const limiter = new FailedAuthLimiter(options.failedAuthLimit)
  if (!anonymousPull && !users.hasUsers) {
    throw new AirgapError(
      'E_INPUT',
      'Anonymous pull is off, but no registry user is configured: nobody could pull.',
      {
        hints: ['Give an htpasswd file with bcrypt entries, or allow anonymous pull.'],
      },
    )
  }

  return async (req, method, url) => {
    let user: string | undefined
    const header = req.headers.authorization
    const basic = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      const name = colon >= 0 ? decoded.slice(0, colon) : decoded
      const password = colon >= 0 ? decoded.slice(colon + 1) : ''
      if (name) {
        const address = clientAddress(req)
        let good = users.remembered(name, password)
        if (good === undefined) {
          const wait = limiter.retryAfter(address)
          if (wait !== undefined) {
            throw new RegistryError(
              'TOOMANYREQUESTS',
              `Too many failed logins from ${address}; try again in ${wait} s.`,
              { retryAfter: wait },
            )
          }
          const mark = limiter.fail(address)
          good = await users.verify(name, password)
          if (good) limiter.succeeded(address, mark)
        } else if (!good) limiter.fail(address)
        if (!good) {
          const limited = limiter.retryAfter(address) !== undefined
          sink.emit({
            type: 'log',
            level: 'warn',
            code: 'W_REGISTRY_AUTH',
            message: `Registry: refused the credentials of user "${name}" for ${method} ${url.pathname} from ${address}${limited ? '; its next attempts wait (429)' : ''}`,
            data: { user: name, method, path: url.pathname, address, limited },
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
}

function unauthorized(message: string): RegistryError {
  return new RegistryError('UNAUTHORIZED', message)
}

/** The header in which a worker of serve hands the address of its client to the primary (serve-workers.ts). */
export const CLIENT_ADDRESS_HEADER = 'x-astrago-airgap-client-address'

/**
 * The address a request came from. A request on a unix socket came from a worker of this serve (the socket is the
 * primary's, readable by its owner only), which names its client in CLIENT_ADDRESS_HEADER; the header is ignored on
 * any other connection.
 */
export function clientAddress(req: IncomingMessage): string {
  const tcp = req.socket.remoteAddress
  if (tcp !== undefined) return tcp
  const forwarded = req.headers[CLIENT_ADDRESS_HEADER]
  return typeof forwarded === 'string' && forwarded !== '' ? forwarded : 'unknown'
}
