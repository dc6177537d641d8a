import { createHash } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { removeLeftTemporaries, replaceFile } from '../fs/replace-file.js'

/**
 * The upload sessions of a push in progress, kept on disk so that a push killed mid-blob (kill -9, a power cut)
 * continues a large blob where the registry says it stands instead of sending it again. One small JSON file per
 * target registry and prefix, under $XDG_CACHE_HOME/astrago-airgap/push/; an entry is written when a session opens
 * and after each chunk the registry accepted, and removed when the blob is complete. A session the registry no
 * longer knows (or refuses, as distribution 2.8 does after a broken request) is simply started again.
 */
export class UploadSessions {
  private constructor(
    private readonly file: string,
    private readonly sessions: Map<string, string>,
  ) {}

  private writing: Promise<void> = Promise.resolve()

  static async open(
    registry: string,
    prefix?: string,
    cacheDir = defaultCacheDir(),
  ): Promise<UploadSessions> {
    const name = createHash('sha256')
      .update(`${registry}/${prefix ?? ''}`)
      .digest('hex')
      .slice(0, 32)
    const file = join(cacheDir, 'push', `${name}.json`)
    await removeLeftTemporaries(file).catch(() => undefined) // a cache: what cannot be removed only takes space
    let sessions = new Map<string, string>()
    try {
      const saved = JSON.parse(await readFile(file, 'utf8')) as { sessions?: Record<string, string> }
      sessions = new Map(Object.entries(saved.sessions ?? {}).filter(([, url]) => typeof url === 'string'))
    } catch {}
    return new UploadSessions(file, sessions)
  }

  /** The session an earlier run left for this blob in this repository. */
  get(repository: string, digest: string): string | undefined {
    return this.sessions.get(`${repository}@${digest}`)
  }

  set(repository: string, digest: string, session: string | undefined): void {
    const key = `${repository}@${digest}`
    if (session === undefined ? !this.sessions.has(key) : this.sessions.get(key) === session) return
    if (session === undefined) this.sessions.delete(key)
    else this.sessions.set(key, session)
    this.save()
  }

  /** Waits for the last write. */
  async flush(): Promise<void> {
    await this.writing
  }

  private save(): void {
    const text = `${JSON.stringify({ sessions: Object.fromEntries(this.sessions) }, null, 1)}\n`
    this.writing = this.writing
      .then(async () => {
        await mkdir(dirname(this.file), { recursive: true, mode: 0o700 })
        await replaceFile(this.file, text, { mode: 0o600 })
      })
      .catch(() => undefined) // a journal that cannot be written only costs a resume
  }
}

function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'astrago-airgap')
}
