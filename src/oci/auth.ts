import { AirgapError } from '../errors.js'
import type { HttpClient } from '../net/http.js'
import type { Credential, CredentialStore } from './docker-config.js'

/**
 * The registry auth handshake: a 401 carries `WWW-Authenticate: Basic …` or `Bearer realm=…,service=…,scope=…`.
 * Basic sends the credential on every request; Bearer trades it (or nothing, for anonymous pulls) at the realm for
 * a token per repository scope, cached until it expires. The scheme learnt for a registry is used up front next time.
 */
export interface Challenge {
  scheme: string
  params: Record<string, string>
}

export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header)
  if (!match) return undefined
  const params: Record<string, string> = {}
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g
  for (let m = re.exec(match[2]!); m; m = re.exec(match[2]!)) {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '')
  }
  return { scheme: match[1]!.toLowerCase(), params }
}

interface CachedToken {
  token: string
  expiresAt: number
}

export class RegistryAuth {
  private readonly challenges = new Map<string, Challenge>()
  private readonly tokens = new Map<string, Promise<CachedToken>>()

  constructor(
    private readonly http: HttpClient,
    private readonly credentials: CredentialStore,
  ) {}

  /** The Authorization header to send to `registry` for `scope`, if we know it needs one. */
  async header(registry: string, scope: string, signal?: AbortSignal): Promise<string | undefined> {
    const challenge = this.challenges.get(registry)
    if (!challenge) return undefined
    if (challenge.scheme === 'basic') {
      const credential = await this.credentials.get(registry)
      return credential ? basic(credential) : undefined
    }
    if (challenge.scheme === 'bearer') {
      const token = await this.token(registry, challenge, scope, signal)
      return `Bearer ${token}`
    }
    return undefined
  }

  /**
   * Records the challenge of a 401 answer to a request that carried `sent` as its Authorization (or none); returns
   * false when retrying cannot help (same scheme, nothing new).
   */
  async learn(
    registry: string,
    wwwAuthenticate: string | undefined,
    scope: string,
    sent: string | undefined,
  ): Promise<boolean> {
    const challenge = parseChallenge(wwwAuthenticate)
    if (!challenge || (challenge.scheme !== 'basic' && challenge.scheme !== 'bearer')) return false
    const known = this.challenges.get(registry)
    this.challenges.set(registry, challenge)
    if (!known || known.scheme !== challenge.scheme) return true
    // Sent before the challenge was known (in parallel with the request that learnt it): retry with auth.
    if (sent === undefined) return true
    if (challenge.scheme === 'bearer') {
      // An expired or insufficient token: drop it and ask again once.
      const key = tokenKey(registry, scopeFor(challenge, scope))
      if (this.tokens.has(key)) {
        this.tokens.delete(key)
        return true
      }
    }
    return false
  }

  async hasCredential(registry: string): Promise<boolean> {
    return (await this.credentials.get(registry)) !== undefined
  }

  private async token(
    registry: string,
    challenge: Challenge,
    scope: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const effectiveScope = scopeFor(challenge, scope)
    const key = tokenKey(registry, effectiveScope)
    const cached = this.tokens.get(key)
    if (cached) {
      const value = await cached.catch(() => undefined)
      if (value && value.expiresAt > Date.now() + 5_000) return value.token
      this.tokens.delete(key)
    }
    const request = this.fetchToken(registry, challenge, effectiveScope, signal)
    this.tokens.set(key, request)
    try {
      return (await request).token
    } catch (error) {
      this.tokens.delete(key)
      throw error
    }
  }

  private async fetchToken(
    registry: string,
    challenge: Challenge,
    scope: string,
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    const realm = challenge.params.realm
    if (!realm)
      throw new AirgapError('E_REMOTE', `Registry ${registry} asked for a bearer token but named no realm.`)
    const url = new URL(realm)
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service)
    // Several scopes (a cross-repository mount also needs pull on the source) go as repeated parameters.
    for (const item of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', item)
    const credential = await this.credentials.get(registry)
    if (credential && !mayReceiveCredentials(url, registry)) {
      throw new AirgapError(
        'E_AUTH',
        `Registry ${registry} sends its clients to the token service ${url.origin}, over plain HTTP on another host: the credentials for ${registry} were not sent there.`,
        {
          hints: [
            "A token service that receives passwords must use https://, or be on the registry host itself; fix the registry's token realm.",
            `Or pull ${registry} anonymously (without --username or a docker login for it), if its content is public.`,
          ],
          data: { registry, realm: url.origin },
        },
      )
    }
    const res = await this.http.fetch(url.toString(), {
      headers: credential ? { authorization: basic(credential) } : {},
      signal,
    })
    if (res.status === 401 || res.status === 403) {
      await res.body.dump()
      throw authError(
        registry,
        credential !== undefined,
        `the token service ${url.origin} answered ${res.status}`,
      )
    }
    if (res.status !== 200) {
      const text = (await res.body.text()).slice(0, 300)
      throw new AirgapError(
        'E_REMOTE',
        `The token service of ${registry} (${url.origin}) answered ${res.status}: ${text}`,
      )
    }
    const body = (await res.body.json()) as { token?: string; access_token?: string; expires_in?: number }
    const token = body.token ?? body.access_token
    if (!token) throw new AirgapError('E_REMOTE', `The token service of ${registry} returned no token.`)
    return { token, expiresAt: Date.now() + Math.max(60, body.expires_in ?? 60) * 1000 }
  }
}

/**
 * Basic credentials go to a token realm only over https, or to the registry's own host (a plain-HTTP registry whose
 * token service runs beside it): never in cleartext to a host the registry merely named.
 */
function mayReceiveCredentials(realm: URL, registry: string): boolean {
  if (realm.protocol === 'https:') return true
  const registryHost = new URL(`http://${registry}`).hostname
  return realm.protocol === 'http:' && realm.hostname === registryHost
}

function scopeFor(challenge: Challenge, scope: string): string {
  return scope || challenge.params.scope || ''
}

function tokenKey(registry: string, scope: string): string {
  return `${registry}\u0000${scope}`
}

function basic(credential: Credential): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`
}

/**
 * The E_AUTH error for a registry that wants credentials or refused them. `registry` names it in the message (with its
 * mirror, when one stands in for it); `loginHost` is the host the credentials belong to (the mirror's, through one).
 */
export function authError(
  registry: string,
  hadCredential: boolean,
  detail: string,
  loginHost = registry,
): AirgapError {
  return new AirgapError(
    'E_AUTH',
    hadCredential
      ? `Registry ${registry} refused the credentials given for ${loginHost} (${detail}).`
      : `Registry ${registry} requires credentials (${detail}).`,
    {
      hints: [
        `Log in with \`docker login ${loginHost}\` (astrago-airgap reads ~/.docker/config.json and its credential helpers),`,
        `or pass --username ${loginHost}=USER and --password-stdin.`,
        ...(loginHost !== registry
          ? [
              `Credentials go to the host spoken to: through a mirror, the mirror's (${loginHost}), never the upstream's.`,
            ]
          : []),
      ],
      data: { registry, loginHost },
    },
  )
}
