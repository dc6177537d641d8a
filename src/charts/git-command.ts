import { spawn } from 'node:child_process'
import type { Writable } from 'node:stream'
import { AirgapError } from '../errors.js'

/**
 * Runs the system `git` for chart sources. Git never prompts (GIT_TERMINAL_PROMPT=0), so a missing credential fails
 * instead of hanging. Credentials given to astrago-airgap reach git through a credential helper written on the
 * command line that reads them from the environment of that one git process: the secret is never in an argument, a
 * URL or a message. Without them, git uses the machine's own configuration (credential helpers, SSH keys).
 */
export interface GitCredential {
  username: string
  password: string
}

export interface RunGitOptions {
  /** The repository folder (`git -C`), when there is one. */
  cwd?: string
  credential?: GitCredential
  signal?: AbortSignal
  /** Killed after this long (default 10 minutes). */
  timeoutMs?: number
  /** Where stdout goes; without it, stdout is collected (capped) and returned. */
  stdout?: Writable
  /** Written to git's stdin, then closed. */
  stdin?: string
  /** The git binary (default `git` on PATH). */
  git?: string
}

export interface GitResult {
  stdout: string
}

/** A failed git run: its exit code and (redacted) stderr, for the caller to turn into a clear error. */
export class GitFailure extends Error {
  constructor(
    readonly args: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args[0] ?? ''} failed (exit ${exitCode}): ${stderr.trim().split('\n').slice(-3).join(' ')}`)
    this.name = 'GitFailure'
  }
}

const MAX_OUTPUT = 16 << 20

/** The `-c` settings that hand a credential to git without putting it on the command line. */
function credentialConfig(credential: GitCredential | undefined): string[] {
  if (!credential) return []
  const helper =
    '!f() { test "$1" = get || exit 0; printf "username=%s\\npassword=%s\\n" ' +
    '"$ASTRAGO_GIT_USERNAME" "$ASTRAGO_GIT_PASSWORD"; }; f'
  // The empty value first clears the helpers configured on the machine, so the secret is not stored by them.
  return ['-c', 'credential.helper=', '-c', `credential.helper=${helper}`]
}

export async function runGit(args: string[], options: RunGitOptions = {}): Promise<GitResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes',
    LC_ALL: 'C',
  }
  if (options.credential) {
    env.ASTRAGO_GIT_USERNAME = options.credential.username
    env.ASTRAGO_GIT_PASSWORD = options.credential.password
  }
  const fullArgs = [
    ...(options.cwd ? ['-C', options.cwd] : []),
    '-c',
    'http.lowSpeedLimit=1000',
    '-c',
    'http.lowSpeedTime=60',
    ...credentialConfig(options.credential),
    ...args,
  ]
  const child = spawn(options.git ?? 'git', fullArgs, { env, stdio: ['pipe', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000)
  const onAbort = () => child.kill('SIGKILL')
  options.signal?.addEventListener('abort', onAbort, { once: true })
  let stdout = ''
  let stderr = ''
  if (options.stdout) child.stdout.pipe(options.stdout)
  else
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk.toString('utf8')
    })
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 64 << 10) stderr += chunk.toString('utf8')
  })
  child.stdin.on('error', () => {})
  child.stdin.end(options.stdin ?? '')
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject)
      child.on('close', resolve)
    })
    if (options.signal?.aborted) {
      throw new AirgapError('E_INTERRUPTED', 'Interrupted; run the same command again to resume.')
    }
    if (code !== 0) throw new GitFailure(args, code, redact(stderr, options.credential))
    return { stdout }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AirgapError('E_ENVIRONMENT', 'git was not found on PATH; it is needed for charts from git.', {
        cause: error,
        hints: ['Install git (e.g. `apt-get install git`) on the machine that builds the bundle.'],
      })
    }
    throw error
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
  }
}

/** Removes user:password@ from URLs and the given secret from text meant for messages. */
export function redact(text: string, credential?: GitCredential): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@')
  if (credential?.password) out = out.split(credential.password).join('***')
  return out
}
