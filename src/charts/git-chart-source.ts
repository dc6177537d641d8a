import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, open } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { Writable } from 'node:stream'
import { AirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'
import { mirrorUrl } from '../net/http.js'
import { type GitCredential, GitFailure, redact, runGit } from './git-command.js'

/**
 * Charts from git repositories: a ref is resolved to its commit (`git ls-remote`; a full 40-hex sha is taken as is),
 * that one commit is fetched shallow into a cache folder kept per repository URL, and the chart's folder at that
 * commit is written out from git's objects (exact blob bytes: no checkout, no .gitattributes filters). A ref that is a
 * branch or tag gives a warning: it may point elsewhere tomorrow.
 */
export interface GitChartRef {
  /** The repository, as `git clone` takes it (https://…, ssh://…, git@host:path). */
  url: string
  /** A branch, tag, `refs/…` name, HEAD, or a full 40-hex commit sha. */
  ref: string
  /** The chart's folder inside the repository ("" or "." for the root). */
  path: string
}

export interface GitSourceOptions {
  /** Where fetched repositories are kept between runs (default ~/.cache/astrago-airgap/git). */
  cacheDir?: string
  /** Credentials by host (`host` or `host:port`), as `--username host=USER`; otherwise git's own configuration. */
  credentials?: Record<string, GitCredential>
  /** URL prefix → replacement, as --mirror: the repository is fetched from the mirror (recorded under its own URL). */
  urlMirrors?: Record<string, string>
  sink?: EventSink
  signal?: AbortSignal
  /** The git binary (default `git` on PATH). */
  git?: string
}

export interface ResolvedGitRef {
  commit: string
  /** The full ref name it came from (refs/heads/main, refs/tags/v1, HEAD); absent for a sha. */
  refName?: string
}

/** A full commit sha (SHA-1 repositories). */
export const COMMIT_SHA = /^[0-9a-f]{40}$/

export function defaultGitCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'astrago-airgap', 'git')
}

/** Normalizes a path inside a repository: `/`-separated, no leading or trailing `/`, "" for the root; `..` refused. */
export function normalizeRepoPath(path: string, field = 'path'): string {
  const parts = path.split(/[\\/]+/).filter((p) => p !== '' && p !== '.')
  if (parts.includes('..')) {
    throw new AirgapError('E_INPUT', `The path "${path}" has "..": it must stay inside the repository.`, {
      data: { field, path },
      hints: ['Write the chart folder relative to the repository root, without "..".'],
    })
  }
  return parts.join('/')
}

/** Which of the given credentials applies to a git URL (by host:port, then host). */
export function credentialFor(
  url: string,
  credentials: Record<string, GitCredential> | undefined,
): GitCredential | undefined {
  if (!credentials) return undefined
  let host: string | undefined
  let hostname: string | undefined
  try {
    const parsed = new URL(url)
    host = parsed.host
    hostname = parsed.hostname
  } catch {
    hostname = /^(?:[^@/]+@)?([^:/]+):/.exec(url)?.[1]
  }
  return (host ? credentials[host] : undefined) ?? (hostname ? credentials[hostname] : undefined)
}

/** The URL git is run against (the mirror, if one applies) and the credential for it. */
function remote(url: string, options: GitSourceOptions): { fetchUrl: string; credential?: GitCredential } {
  const fetchUrl = mirrorUrl(url, options.urlMirrors)
  const credential = credentialFor(fetchUrl, options.credentials)
  return credential ? { fetchUrl, credential } : { fetchUrl }
}

/** Resolves `ref` to a commit. A branch or tag emits CHART_GIT_REF_MOVABLE. */
export async function resolveGitRef(
  source: Pick<GitChartRef, 'url' | 'ref'>,
  options: GitSourceOptions = {},
): Promise<ResolvedGitRef> {
  const ref = source.ref.trim()
  if (COMMIT_SHA.test(ref.toLowerCase())) return { commit: ref.toLowerCase() }
  if (!ref) {
    throw new AirgapError('E_INPUT', `The git chart source ${redact(source.url)} has no ref.`, {
      data: { field: 'ref', url: redact(source.url) },
      hints: ['Give `ref:` a full commit sha (reproducible), or a tag or branch.'],
    })
  }
  const { fetchUrl, credential } = remote(source.url, options)
  const patterns =
    ref.startsWith('refs/') || ref === 'HEAD' ? [ref] : [`refs/tags/${ref}`, `refs/heads/${ref}`]
  let stdout: string
  try {
    ;({ stdout } = await runGit(['ls-remote', '--', fetchUrl, ...patterns.map((p) => `${p}*`)], {
      credential,
      signal: options.signal,
      timeoutMs: 120_000,
      git: options.git,
    }))
  } catch (error) {
    throw gitError(error, source.url, fetchUrl)
  }
  const refs = new Map<string, string>()
  for (const line of stdout.split('\n')) {
    const [sha, name] = line.split('\t')
    if (sha && name) refs.set(name, sha)
  }
  for (const name of patterns) {
    const commit = refs.get(`${name}^{}`) ?? refs.get(name)
    if (!commit) continue
    const resolved = { commit, refName: name }
    const kind = name.startsWith('refs/tags/') ? 'tag' : name.startsWith('refs/heads/') ? 'branch' : 'ref'
    options.sink?.emit({
      type: 'log',
      level: 'warn',
      code: 'CHART_GIT_REF_MOVABLE',
      message:
        `${redact(source.url)}: ${kind} ${ref} is commit ${commit} today; a rebuild may take another commit. ` +
        `Pin ref: ${commit} for a reproducible bundle.`,
      data: { url: redact(source.url), ref, commit },
    })
    return resolved
  }
  const abbreviated = /^[0-9a-f]{7,39}$/i.test(ref)
  throw new AirgapError('E_REMOTE', `${redact(source.url)} has no branch or tag "${ref}".`, {
    data: { field: 'ref', url: redact(source.url), ref },
    hints: abbreviated
      ? ['An abbreviated commit sha cannot be resolved remotely: write the full 40-character sha.']
      : [
          `Check the ref: \`git ls-remote ${redact(source.url)}\` lists the branches and tags there.`,
          'Or pin a full 40-character commit sha.',
        ],
  })
}

/**
 * Makes sure `commit` is in the cache repository of `url` (fetching only that commit, shallow, when it is not) and
 * returns that repository's folder.
 */
export async function fetchGitCommit(
  url: string,
  commit: string,
  options: GitSourceOptions = {},
): Promise<string> {
  const cacheDir = options.cacheDir ?? defaultGitCacheDir()
  const key = createHash('sha256').update(url).digest('hex').slice(0, 24)
  const repo = join(cacheDir, `${key}.git`)
  const git = (args: string[]) => runGit(args, { cwd: repo, signal: options.signal, git: options.git })
  if (!existsSync(join(repo, 'HEAD'))) {
    await mkdir(repo, { recursive: true })
    await git(['init', '--bare', '--quiet'])
    await git(['config', 'gc.auto', '0'])
    await git(['config', 'astrago-airgap.url', redact(url)])
  }
  const present = await git(['cat-file', '-e', `${commit}^{commit}`]).then(
    () => true,
    () => false,
  )
  if (present) {
    options.sink?.emit({
      type: 'log',
      level: 'debug',
      code: 'CHART_GIT_CACHED',
      message: `${redact(url)}: commit ${commit} is already in ${repo}.`,
      data: { url: redact(url), commit },
    })
    return repo
  }
  const { fetchUrl, credential } = remote(url, options)
  // Two runs fetching into the same cache repository at once contend for its shallow file: the loser waits and retries.
  for (let attempt = 1; ; attempt++) {
    try {
      await fetchOnce(repo, fetchUrl, commit, credential, options)
      break
    } catch (error) {
      const locked =
        error instanceof GitFailure && /\.lock'?: File exists|Unable to create .*\.lock/i.test(error.stderr)
      if (!locked || attempt >= 10) throw gitError(error, url, fetchUrl, commit)
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt))
    }
  }
  // A ref keeps the fetched commit from being pruned by a later `git gc` of the cache.
  await git(['update-ref', `refs/astrago-airgap/${commit}`, commit])
  return repo
}

async function fetchOnce(
  repo: string,
  fetchUrl: string,
  commit: string,
  credential: GitCredential | undefined,
  options: GitSourceOptions,
): Promise<void> {
  await runGit(
    [
      '-c',
      'transfer.fsckObjects=true',
      'fetch',
      '--quiet',
      '--depth',
      '1',
      '--no-tags',
      '--no-write-fetch-head',
    ].concat(['--', fetchUrl, commit]),
    { cwd: repo, credential, signal: options.signal, git: options.git },
  )
}

export interface GitTreeFile {
  /** Path inside the repository. */
  path: string
  mode: string
  sha: string
}

/** Lists the files under `path` at `commit`; symbolic links and submodules are reported and left out. */
export async function listGitTree(
  repo: string,
  commit: string,
  path: string,
  options: Pick<GitSourceOptions, 'sink' | 'signal' | 'git'> = {},
): Promise<GitTreeFile[]> {
  const args = ['ls-tree', '-r', '-z', '--full-tree', commit, '--', ...(path ? [path] : [])]
  const { stdout } = await runGit(args, { cwd: repo, signal: options.signal, git: options.git })
  const files: GitTreeFile[] = []
  for (const record of stdout.split('\0')) {
    const m = /^(\d+) (\w+) ([0-9a-f]+)\t(.*)$/s.exec(record)
    if (!m) continue
    const [, mode, type, sha, file] = m as unknown as [string, string, string, string, string]
    if (path && file !== path && !file.startsWith(`${path}/`)) continue
    if (file.split('/').some((part) => part === '..' || part === '.' || part === '' || part === '.git')) {
      // fsck refuses such trees on fetch; a cache filled some other way must not write outside its folder either.
      throw new AirgapError(
        'E_INTEGRITY',
        `Commit ${commit} has an unsafe path "${file}"; it is not written out.`,
      )
    }
    if (type === 'blob' && (mode === '100644' || mode === '100755')) {
      files.push({ path: file, mode, sha })
      continue
    }
    options.sink?.emit({
      type: 'log',
      level: 'warn',
      code: 'CHART_GIT_ENTRY_SKIPPED',
      message: `${file} at ${commit} is a ${mode === '120000' ? 'symbolic link' : type === 'commit' ? 'submodule' : `${type} (mode ${mode})`}; it is left out of the chart.`,
      data: { file, commit },
    })
  }
  return files
}

/** The folders of the commit that hold a Chart.yaml (for hints), at most `limit`. */
export async function chartFoldersAt(repo: string, commit: string, limit = 10): Promise<string[]> {
  const { stdout } = await runGit(['ls-tree', '-r', '-z', '--name-only', '--full-tree', commit], {
    cwd: repo,
  })
  return stdout
    .split('\0')
    .filter((f) => f === 'Chart.yaml' || f.endsWith('/Chart.yaml'))
    .map((f) => (f === 'Chart.yaml' ? '.' : f.slice(0, -'/Chart.yaml'.length)))
    .slice(0, limit)
}

/**
 * Writes the files under `path` at `commit` into `dest` (paths relative to `path`), blob bytes exactly as stored,
 * streamed from one `git cat-file --batch`. Returns how many files were written.
 */
export async function writeGitTree(
  repo: string,
  commit: string,
  path: string,
  dest: string,
  options: Pick<GitSourceOptions, 'sink' | 'signal' | 'git'> = {},
): Promise<number> {
  const files = await listGitTree(repo, commit, path, options)
  if (files.length === 0) return 0
  const targets = files.map((f) => ({ ...f, out: join(dest, path ? f.path.slice(path.length + 1) : f.path) }))
  for (const dir of new Set(targets.map((t) => dirname(t.out)))) await mkdir(dir, { recursive: true })
  const sink = new BlobWriter(targets)
  await runGit(['cat-file', '--batch'], {
    cwd: repo,
    stdin: `${targets.map((t) => t.sha).join('\n')}\n`,
    stdout: sink,
    signal: options.signal,
    git: options.git,
  })
  await sink.finished()
  for (const t of targets) if (t.mode === '100755') await chmod(t.out, 0o755)
  return targets.length
}

/** Parses `git cat-file --batch` output ("<sha> <type> <size>\n<bytes>\n" per object) into the target files. */
class BlobWriter extends Writable {
  private index = 0
  private header = ''
  private remaining = -1
  private handle: import('node:fs/promises').FileHandle | undefined
  private done: Promise<void>
  private resolveDone!: () => void
  private rejectDone!: (error: Error) => void

  constructor(private readonly targets: { sha: string; out: string }[]) {
    super()
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve
      this.rejectDone = reject
    })
    this.on('finish', () => {
      if (this.index < this.targets.length)
        this.rejectDone(
          new Error(`git cat-file stopped after ${this.index} of ${this.targets.length} objects`),
        )
      else this.resolveDone()
    })
    this.on('error', (error) => this.rejectDone(error))
  }

  finished(): Promise<void> {
    return this.done
  }

  override async _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void) {
    try {
      let offset = 0
      while (offset < chunk.length) {
        if (this.remaining < 0) {
          const nl = chunk.indexOf(0x0a, offset)
          if (nl < 0) {
            this.header += chunk.subarray(offset).toString('latin1')
            break
          }
          this.header += chunk.subarray(offset, nl).toString('latin1')
          offset = nl + 1
          const m = /^([0-9a-f]+) blob (\d+)$/.exec(this.header)
          const target = this.targets[this.index]
          if (!m || !target || m[1] !== target.sha)
            throw new Error(`unexpected git cat-file output: ${this.header}`)
          this.header = ''
          this.remaining = Number(m[2])
          this.handle = await open(target.out, 'w', 0o644)
        }
        if (this.remaining > 0) {
          const take = Math.min(this.remaining, chunk.length - offset)
          await this.handle!.write(chunk.subarray(offset, offset + take))
          this.remaining -= take
          offset += take
        }
        if (this.remaining === 0) {
          if (offset >= chunk.length) break
          // The newline after the object's bytes.
          offset += 1
          await this.handle!.close()
          this.handle = undefined
          this.remaining = -1
          this.index += 1
        }
      }
      callback()
    } catch (error) {
      await this.handle?.close().catch(() => {})
      callback(error as Error)
    }
  }
}

/**
 * Turns a failed git run into the error the user needs (anything else passes through). Its data.field names the
 * definition field at fault (url, or ref for a commit the repository does not have) so the caller can add file:line:col.
 */
export function gitError(error: unknown, url: string, fetchUrl: string, commit?: string): unknown {
  if (!(error instanceof GitFailure)) return error
  const shown = redact(url)
  const via = fetchUrl !== url ? ` (through the mirror ${redact(fetchUrl)})` : ''
  const detail = error.stderr.trim().split('\n').slice(-2).join(' ')
  // `field` says which field of the definition is at fault, for the loader to point at its line.
  const data = { field: 'url', url: shown, fetchUrl: redact(fetchUrl), stderr: error.stderr.trim() }
  const s = error.stderr
  if (
    /Authentication failed|could not read (Username|Password)|terminal prompts disabled|HTTP 40[13]|returned error: 40[13]|Permission denied \(publickey/i.test(
      s,
    )
  ) {
    return new AirgapError('E_AUTH', `${shown}${via}: the git server wants credentials (${detail}).`, {
      cause: error,
      data,
      hints: [
        'Give them with --username HOST=USER and --password-stdin (a token works as the password),',
        "or set up git's own credentials on this machine (a credential helper, or an SSH key).",
      ],
    })
  }
  if (
    commit &&
    /not our ref|couldn't find remote ref|no such remote ref|unadvertised object|remote error: upload-pack/i.test(
      s,
    )
  ) {
    return new AirgapError('E_REMOTE', `${shown}${via} has no commit ${commit}.`, {
      cause: error,
      data: { ...data, field: 'ref', ref: commit },
      hints: [
        `Check that commit ${commit} was pushed to ${shown} (\`git branch -r --contains ${commit}\` in a clone).`,
      ],
    })
  }
  if (
    /repository '.*' not found|Repository not found|does not appear to be a git repository|HTTP 404|returned error: 404/i.test(
      s,
    )
  ) {
    return new AirgapError('E_REMOTE', `${shown}${via}: no git repository there (${detail}).`, {
      cause: error,
      data,
      hints: [
        'Check the repository URL: `git ls-remote <url>` must list its branches from this machine.',
        'A private repository may answer "not found" without credentials: give --username HOST=USER.',
      ],
    })
  }
  return new AirgapError('E_REMOTE', `${shown}${via}: the git repository could not be reached (${detail}).`, {
    cause: error,
    data,
    hints: [
      'Check the URL (`git ls-remote <url>` must work from this machine), the network and any proxy settings.',
      'For a mirror of the repository, give --mirror ORIGINAL=MIRROR.',
    ],
  })
}
