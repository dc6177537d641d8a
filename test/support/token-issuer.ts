import { generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A token service for distribution's `auth: token:` mode (the Docker registry token protocol): the registry answers
 * 401 `Bearer realm=…,service=…,scope=…`, the client asks the realm for a token (`GET ?service=…&scope=…`, with Basic
 * credentials or none), and presents it as `Authorization: Bearer`. Known users get the pull/push actions they ask
 * for on any repository; anonymous clients get pull on the public repositories only; a wrong password is a 401, as
 * Docker Hub and Harbor answer. A scope that is not granted yields a token without that access (the registry then
 * answers 401 insufficient_scope), again as real token services do.
 *
 * Tokens are ES256 JWTs with a `kid` header naming a key of the JWKS file the registry is configured with
 * (`jwks:`): distribution v3 looks an x5c-less token's key up by that key ID (registry/auth/token/token.go,
 * VerifySigningKey) and checks `iss`, `aud` (= service), `exp`/`nbf` (±60 s leeway) and the `access` claim.
 *
 * Every request is recorded (account, scopes, status, the token issued) so tests can count them.
 */
export interface TokenIssuerOptions {
  /** username → password */
  users?: Record<string, string>
  /** Repositories anyone may pull without credentials. */
  publicRepositories?: string[]
  service?: string
  issuer?: string
  /** Token lifetime (default 300 s). */
  expiresInSeconds?: number
}

export interface TokenRequest {
  /** The authenticated user; undefined for anonymous requests (and for refused ones). */
  account: string | undefined
  service: string | undefined
  scopes: string[]
  status: number
  /** What the token grants, as `type:name:actions` strings. */
  granted: string[]
  token?: string
}

export interface TokenIssuer {
  /** The realm URL the registry sends clients to. */
  realm: string
  service: string
  issuer: string
  /** The JWKS file holding the verification key. */
  jwksFile: string
  /** The `auth` section of a distribution config that trusts this issuer. */
  registryAuthConfig(): Record<string, unknown>
  requests: TokenRequest[]
  stop(): Promise<void>
}

interface Access {
  type: string
  name: string
  actions: string[]
}

const KNOWN_ACTIONS = new Set(['pull', 'push'])

export async function startTokenIssuer(options: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const users = options.users ?? {}
  const publicRepositories = new Set(options.publicRepositories ?? [])
  const service = options.service ?? 'astrago-test-registry'
  const issuer = options.issuer ?? 'astrago-test-token-issuer'
  const lifetime = options.expiresInSeconds ?? 300
  const workDir = mkdtempSync(join(tmpdir(), 'astrago-token-issuer-'))

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const kid = `astrago-test-${randomUUID().slice(0, 8)}`
  const jwksFile = join(workDir, 'jwks.json')
  writeFileSync(
    jwksFile,
    JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] }),
  )

  const requests: TokenRequest[] = []
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid')
    if (url.pathname !== '/token' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"details":"not found"}')
      return
    }
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean))
    const record: TokenRequest = {
      account: undefined,
      service: url.searchParams.get('service') ?? undefined,
      scopes,
      status: 200,
      granted: [],
    }
    requests.push(record)
    const login = basicCredentials(req)
    if (login && users[login.username] !== login.password) {
      record.status = 401
      res
        .writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': `Basic realm="${issuer}"`,
        })
        .end('{"details":"incorrect username or password"}')
      return
    }
    if (record.service !== service) {
      record.status = 400
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"details":"unknown service"}')
      return
    }
    record.account = login?.username
    const access: Access[] = []
    for (const scope of scopes) {
      const parsed = parseScope(scope)
      if (parsed?.type !== 'repository') continue
      const allowed = parsed.actions.filter((action) =>
        login ? KNOWN_ACTIONS.has(action) : action === 'pull' && publicRepositories.has(parsed.name),
      )
      if (allowed.length) access.push({ ...parsed, actions: allowed })
    }
    record.granted = access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`)
    const now = Math.floor(Date.now() / 1000)
    const token = signJwt(
      {
        iss: issuer,
        sub: login?.username ?? '',
        aud: service,
        exp: now + lifetime,
        nbf: now - 1,
        iat: now,
        jti: randomUUID(),
        access,
      },
      privateKey,
      kid,
    )
    record.token = token
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: lifetime,
        issued_at: new Date().toISOString(),
      }),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const realm = `http://127.0.0.1:${port}/token`

  return {
    realm,
    service,
    issuer,
    jwksFile,
    registryAuthConfig: () => ({ token: { realm, service, issuer, jwks: jwksFile } }),
    requests,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      rmSync(workDir, { recursive: true, force: true })
    },
  }
}

/** `repository:name:pull,push` (the name may itself hold colons only in the resource-class form, not supported). */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':')
  const last = scope.lastIndexOf(':')
  if (first <= 0 || last === first) return undefined
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  }
}

function basicCredentials(req: IncomingMessage): { username: string; password: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')
  if (!match) return undefined
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url')

/** A compact JWS, ES256 (the raw r||s signature JWS wants, not DER). */
function signJwt(claims: Record<string, unknown>, key: KeyObject, kid: string): string {
  const input = `${b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid }))}.${b64url(JSON.stringify(claims))}`
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${b64url(signature)}`
}
