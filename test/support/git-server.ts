import { execFile, spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { findTool } from './tools.js'

/**
 * Real git over HTTP for the tests and the demo: git's own `git http-backend` (smart HTTP, protocol v2) run as a CGI
 * program behind a small Node HTTP server on 127.0.0.1, serving every repository under one root folder, optionally
 * behind HTTP basic auth. Repositories are made with the real git too (`createGitRepository`, `commitFiles`), with a
 * fixed author and dates so their commits are the same on every machine.
 */
const run = promisify(execFile)

export interface GitServer {
  /** http://127.0.0.1:<port>; a repository at <root>/a/b.git is <url>/a/b.git */
  url: string
  /** Requests served, as "METHOD /path?query". */
  requests: string[]
  stop(): Promise<void>
}

export interface GitServerOptions {
  /** Require these credentials (HTTP basic auth) for every request. */
  auth?: { username: string; password: string }
}

export async function startGitServer(root: string, options: GitServerOptions = {}): Promise<GitServer> {
  const git = findTool('git')
  const requests: string[] = []
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`)
    if (options.auth && !authorized(req, options.auth)) {
      res
        .writeHead(401, { 'www-authenticate': 'Basic realm="git"', 'content-type': 'text/plain' })
        .end('auth\n')
      return
    }
    serveCgi(git, root, req, res, options.auth?.username)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function authorized(req: IncomingMessage, auth: { username: string; password: string }): boolean {
  const header = req.headers.authorization ?? ''
  if (!header.startsWith('Basic ')) return false
  return Buffer.from(header.slice(6), 'base64').toString('utf8') === `${auth.username}:${auth.password}`
}

/** One CGI request: the request body to http-backend's stdin, its "Status:" and headers to the response, then its body. */
function serveCgi(git: string, root: string, req: IncomingMessage, res: ServerResponse, user?: string): void {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1')
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    REQUEST_METHOD: req.method ?? 'GET',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
    ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
    ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
    ...(user ? { REMOTE_USER: user } : {}),
  }
  const child = spawn(git, ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  req.pipe(child.stdin)
  child.stdin.on('error', () => {})
  let head = Buffer.alloc(0)
  let started = false
  child.stdout.on('data', (chunk: Buffer) => {
    if (started) {
      res.write(chunk)
      return
    }
    head = Buffer.concat([head, chunk])
    const crlf = head.indexOf('\r\n\r\n')
    const lf = head.indexOf('\n\n')
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1
    if (end < 0) return
    let status = 200
    const headers: Record<string, string> = {}
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':')
      if (colon <= 0) continue
      const name = line.slice(0, colon).trim()
      const value = line.slice(colon + 1).trim()
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500
      else headers[name] = value
    }
    started = true
    res.writeHead(status, headers)
    res.write(head.subarray(end))
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  child.on('close', (code) => {
    if (!started)
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`git http-backend failed (${code}): ${stderr}`)
    else res.end()
  })
}

/** A fixed identity and clock for commits, so a repository built from the same files has the same commits. */
const commitEnv = {
  GIT_AUTHOR_NAME: 'astrago-airgap tests',
  GIT_AUTHOR_EMAIL: 'tests@astrago-airgap.invalid',
  GIT_COMMITTER_NAME: 'astrago-airgap tests',
  GIT_COMMITTER_EMAIL: 'tests@astrago-airgap.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
}

async function git(dir: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(findTool('git'), ['-C', dir, ...args], {
    env: { ...process.env, ...commitEnv, ...env },
  })
  return stdout.trim()
}

/**
 * Creates a repository at `dir` (a working tree on branch `main`, served as it is) with one commit of `files`
 * (path → content), and returns the commit sha. Fetching any commit by its sha is allowed, as on the large git hosts.
 */
export async function createGitRepository(
  dir: string,
  files: Record<string, string>,
  options: { message?: string; tag?: string } = {},
): Promise<string> {
  await mkdir(dir, { recursive: true })
  await git(dir, ['init', '--quiet', '--initial-branch=main'])
  await git(dir, ['config', 'uploadpack.allowAnySHA1InWant', 'true'])
  await git(dir, ['config', 'http.receivepack', 'false'])
  return await commitFiles(dir, files, { message: options.message ?? 'initial commit', ...options })
}

/** Writes `files` into the repository at `dir` and commits them (on the current branch); returns the new commit. */
export async function commitFiles(
  dir: string,
  files: Record<string, string>,
  options: { message?: string; tag?: string; date?: string } = {},
): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), content)
  }
  const count = Number((await git(dir, ['rev-list', '--all', '--count']).catch(() => '0')) || '0')
  // One minute per commit after a fixed start: the same history gives the same shas.
  const date = options.date ?? new Date(Date.UTC(2026, 0, 1) + count * 60_000).toISOString()
  await git(dir, ['add', '--all'])
  await git(dir, ['commit', '--quiet', '--allow-empty', '-m', options.message ?? 'update'], {
    GIT_AUTHOR_DATE: date,
    GIT_COMMITTER_DATE: date,
  })
  if (options.tag) await git(dir, ['tag', '-a', options.tag, '-m', options.tag], { GIT_COMMITTER_DATE: date })
  return await git(dir, ['rev-parse', 'HEAD'])
}
