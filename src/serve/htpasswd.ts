import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import bcrypt from 'bcryptjs'
import { AirgapError } from '../errors.js'
import { type EventSink, type LogEvent, logEvent } from '../events/types.js'

/**
 * htpasswd files with bcrypt entries only, the kind `htpasswd -B` writes and distribution accepts. MD5 ($apr1$),
 * SHA1 ({SHA}), crypt and plain-text entries are refused with the line that holds them: they are too weak to guard a
 * registry, and silently ignoring a user would be worse.
 */
export interface HtpasswdUser {
  user: string
  /** The bcrypt hash ($2a$, $2b$ or $2y$). */
  hash: string
  /** 1-based line in the file. */
  line: number
}

const BCRYPT = /^\$2[aby]?\$(\d\d)\$[./A-Za-z0-9]{53}$/
const MAX_PASSWORD_BYTES = 72

/** Parses htpasswd text; `source` names the file in errors. Blank lines and `#` comments are skipped. */
export function parseHtpasswd(text: string, source = 'htpasswd'): Map<string, HtpasswdUser> {
  const users = new Map<string, HtpasswdUser>()
  const lines = text.split(/\r?\n/)
  lines.forEach((raw, i) => {
    const line = i + 1
    const entry = raw.trim()
    if (!entry || entry.startsWith('#')) return
    const colon = entry.indexOf(':')
    if (colon <= 0) {
      throw new AirgapError('E_INPUT', `${source}:${line} is not a "user:hash" entry.`, {
        hints: ['Each line of an htpasswd file is user:bcrypt-hash, as `htpasswd -nB user` prints it.'],
        data: { file: source, line },
      })
    }
    const user = entry.slice(0, colon)
    const hash = entry.slice(colon + 1)
    checkBcryptHash(hash, `${source}:${line} (user "${user}")`)
    const earlier = users.get(user)
    if (earlier) {
      throw new AirgapError(
        'E_INPUT',
        `${source}:${line} defines user "${user}" again (first on line ${earlier.line}).`,
        { hints: ['Keep one line per user.'], data: { file: source, line } },
      )
    }
    users.set(user, { user, hash, line })
  })
  return users
}

/** Throws E_INPUT unless `hash` is a bcrypt hash; `where` says which entry it is. */
export function checkBcryptHash(hash: string, where: string): void {
  if (BCRYPT.test(hash)) return
  throw new AirgapError(
    'E_INPUT',
    `${where} is not a bcrypt hash (it looks like ${describeHash(hash)}); only bcrypt entries are accepted.`,
    {
      hints: ['Create the entry again with `htpasswd -B <file> <user>` (bcrypt), and remove the old one.'],
    },
  )
}

function describeHash(hash: string): string {
  if (hash.startsWith('$apr1$')) return 'Apache MD5 ($apr1$)'
  if (hash.startsWith('{SHA}')) return 'SHA-1 ({SHA})'
  if (hash.startsWith('$1$')) return 'MD5-crypt ($1$)'
  if (hash.startsWith('$5$') || hash.startsWith('$6$')) return 'SHA-crypt'
  if (hash.startsWith('$2')) return 'a malformed bcrypt hash'
  if (/^[./A-Za-z0-9]{13}$/.test(hash)) return 'DES crypt'
  return 'plain text or an unknown scheme'
}

/** One htpasswd line (without newline) for `user` with a bcrypt hash of `password` ($2y$, as `htpasswd -B`). */
export function createHtpasswdEntry(user: string, password: string, rounds = 10): string {
  if (!user || /[:\s]/.test(user)) {
    throw new AirgapError(
      'E_INPUT',
      `"${user}" cannot be an htpasswd user name: it must be non-empty, without ":" or spaces.`,
    )
  }
  if (!password) throw new AirgapError('E_INPUT', `The password for "${user}" is empty.`)
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) {
    throw new AirgapError(
      'E_INPUT',
      `The password for "${user}" is longer than ${MAX_PASSWORD_BYTES} bytes, the most bcrypt uses.`,
      { hints: ['Choose a shorter password: bcrypt would ignore everything after byte 72.'] },
    )
  }
  const hash = bcrypt.hashSync(password, rounds).replace(/^\$2b\$/, '$2y$')
  return `${user}:${hash}`
}

/** Checks a password against a bcrypt hash (constant-time inside bcrypt). */
export async function verifyBcrypt(password: string, hash: string): Promise<boolean> {
  try {
    return await bcrypt.compare(password, hash)
  } catch {
    return false
  }
}

export interface UserStoreOptions {
  /** An htpasswd file; reread when it changes, so users can be added or removed without a restart. */
  htpasswdFile?: string
  /** user → bcrypt hash. */
  users?: Record<string, string>
  /** How long a check's result is remembered (default 5 minutes); bcrypt costs ~50 ms per check. */
  cacheMs?: number
  /** Where warnings go: the htpasswd file was removed, or cannot be read or parsed. */
  sink?: EventSink
}

/** The most results remembered (successes and failures each); the oldest go first. */
const MAX_REMEMBERED = 1000
/**
 * A bcrypt hash of nothing anybody knows, with the cost digits replaced by those of the real users: an unknown user
 * costs one bcrypt check like a known one, so user names cannot be told apart by timing.
 */
const DUMMY_HASH_TAIL = 'xbcNQ3clbz7sGQHbGnVXuOeCFmMkPNCHEhKX2P4VQRJnK1t8M2dvC'

/**
 * The users who may push: an htpasswd file and/or a map of bcrypt hashes. Check results are remembered by a sha256 of
 * user, password and hash (never the password itself), because clients send Basic credentials with every request and
 * bcrypt is deliberately slow: a success for `cacheMs`, and a failure too, so repeating a wrong password costs nothing.
 *
 * The file is the truth: when it is removed its users are gone, and when it cannot be read or parsed none of its users
 * are accepted until it is fixed; each case is reported once as a warning event.
 */
export class UserStore {
  private fileUsers = new Map<string, HtpasswdUser>()
  private fileStamp = ''
  private checkedAt = 0
  private dummyHash = `$2b$10$${DUMMY_HASH_TAIL}`
  private readonly mapUsers = new Map<string, string>()
  private readonly verified = new Map<string, number>()
  private readonly failed = new Map<string, number>()
  private readonly cacheMs: number

  constructor(private readonly options: UserStoreOptions) {
    this.cacheMs = options.cacheMs ?? 5 * 60_000
    for (const [user, hash] of Object.entries(options.users ?? {})) {
      checkBcryptHash(hash, `The hash of user "${user}"`)
      this.mapUsers.set(user, hash)
    }
    if (options.htpasswdFile) this.reload(true)
    this.updateDummyHash()
  }

  /** True when at least one user is configured. */
  get hasUsers(): boolean {
    this.reload(false)
    return this.mapUsers.size + this.fileUsers.size > 0
  }

  /** A remembered result for these credentials (true: good, false: wrong), or undefined when it needs a check. */
  remembered(user: string, password: string): boolean | undefined {
    this.reload(false)
    const id = this.key(user, password)
    const now = Date.now()
    if ((this.verified.get(id) ?? 0) > now) return true
    if ((this.failed.get(id) ?? 0) > now) return false
    return undefined
  }

  async verify(user: string, password: string): Promise<boolean> {
    const known = this.remembered(user, password)
    if (known !== undefined) return known
    const hash = this.hashOf(user)
    const id = this.key(user, password)
    // An unknown user is checked against the dummy hash all the same, and always fails.
    const ok = (await verifyBcrypt(password, hash ?? this.dummyHash)) && hash !== undefined
    remember(ok ? this.verified : this.failed, id, Date.now() + this.cacheMs)
    return ok
  }

  private hashOf(user: string): string | undefined {
    return this.fileUsers.get(user)?.hash ?? this.mapUsers.get(user)
  }

  private key(user: string, password: string): string {
    const hash = this.hashOf(user) ?? this.dummyHash
    return createHash('sha256').update(`${user}\u0000${password}\u0000${hash}`).digest('base64')
  }

  /** The dummy hash takes the highest cost of the real users (10 when there are none). */
  private updateDummyHash(): void {
    const hashes = [...this.mapUsers.values(), ...[...this.fileUsers.values()].map((u) => u.hash)]
    const cost = Math.max(0, ...hashes.map((h) => Number(BCRYPT.exec(h)?.[1] ?? 0))) || 10
    this.dummyHash = `$2b$${String(cost).padStart(2, '0')}$${DUMMY_HASH_TAIL}`
  }

  /** Rereads the htpasswd file when its size or mtime changed, or it appeared, disappeared or became unreadable. */
  private reload(initial: boolean): void {
    const file = this.options.htpasswdFile
    if (!file || (!initial && Date.now() - this.checkedAt < 1000)) return
    this.checkedAt = Date.now()
    let stamp: string
    try {
      const info = statSync(file)
      stamp = `${info.size}:${info.mtimeMs}:${info.ino}`
    } catch (error) {
      if (initial) {
        throw new AirgapError(
          'E_INPUT',
          `Cannot read the htpasswd file ${file}: ${(error as Error).message}`,
          {
            cause: error,
          },
        )
      }
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') {
        this.revoke(
          'missing',
          logEvent(
            'W_HTPASSWD_REMOVED',
            `The htpasswd file ${file} was removed: no user of it may push now.`,
            {
              file,
            },
          ),
        )
      } else {
        this.revoke(
          `stat-error:${code}`,
          logEvent(
            'W_HTPASSWD_UNREADABLE',
            `Cannot read the htpasswd file ${file} (${(error as Error).message}): none of its users may push until it is readable.`,
            { file, problem: (error as Error).message },
          ),
        )
      }
      return
    }
    if (stamp === this.fileStamp) return
    try {
      this.fileUsers = parseHtpasswd(readFileSync(file, 'utf8'), file)
      this.fileStamp = stamp
      this.forget()
      if (!initial) {
        this.options.sink?.emit(
          logEvent(
            'I_HTPASSWD_RELOADED',
            `Reread the htpasswd file ${file}: ${this.fileUsers.size} user(s).`,
            {
              file,
              users: this.fileUsers.size,
            },
          ),
        )
      }
    } catch (error) {
      if (initial) throw error
      this.revoke(
        stamp,
        logEvent(
          'W_HTPASSWD_UNREADABLE',
          `Cannot use the htpasswd file ${file} (${(error as Error).message}): none of its users may push until it is fixed.`,
          { file, problem: (error as Error).message },
        ),
      )
    }
  }

  /** Drops every user of the file; warns once per state of the file (`stamp`). */
  private revoke(stamp: string, warning: LogEvent): void {
    if (stamp === this.fileStamp) return
    this.fileStamp = stamp
    this.fileUsers = new Map()
    this.forget()
    this.options.sink?.emit(warning)
  }

  private forget(): void {
    this.verified.clear()
    this.failed.clear()
    this.updateDummyHash()
  }
}

/** Remembers `id` until `until`, dropping the oldest entry when the map is full. */
function remember(map: Map<string, number>, id: string, until: number): void {
  map.delete(id)
  if (map.size >= MAX_REMEMBERED) map.delete(map.keys().next().value!)
  map.set(id, until)
}
