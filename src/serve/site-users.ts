import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AirgapError } from '../errors.js'
import { createHtpasswdEntry, parseHtpasswd } from './htpasswd.js'

/**
 * Registry users created on the site (`serve --user NAME`): each gets a random password the first time, written once
 * to `<state>/users/<name>.password` (mode 0600) for the installer to read and hand on, and its bcrypt hash to
 * `<state>/users/htpasswd`. Later runs keep existing users and their passwords. Passwords never go into events or logs.
 * Every run puts the folder back to mode 0700 and its files to 0600, whatever they were changed to.
 */
export interface SiteUser {
  name: string
  /** Where the password is (read it there; it is not printed again). */
  passwordFile: string
  /** True when this run created the user. */
  created: boolean
}

const NAME = /^[a-z][a-z0-9._-]{0,62}$/

export async function ensureSiteUsers(
  stateDir: string,
  names: string[],
): Promise<{ htpasswdFile: string; users: SiteUser[] }> {
  const dir = join(stateDir, 'users')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await keepPrivate(dir)
  const htpasswdFile = join(dir, 'htpasswd')
  let text = ''
  try {
    text = await readFile(htpasswdFile, 'utf8')
  } catch {}
  const existing = parseHtpasswd(text, htpasswdFile)
  const users: SiteUser[] = []
  for (const name of names) {
    if (!NAME.test(name)) {
      throw new AirgapError(
        'E_USAGE',
        `--user ${name}: a user name is lowercase letters, digits, ".", "_" or "-".`,
      )
    }
    const passwordFile = join(dir, `${name}.password`)
    if (existing.has(name)) {
      users.push({ name, passwordFile, created: false })
      continue
    }
    const password = randomBytes(18).toString('base64url')
    const secret = await open(passwordFile, 'w', 0o600)
    await secret.writeFile(`${password}\n`)
    await secret.close()
    const entries = await open(htpasswdFile, 'a', 0o600)
    await entries.writeFile(`${createHtpasswdEntry(name, password)}\n`)
    await entries.close()
    users.push({ name, passwordFile, created: true })
  }
  return { htpasswdFile, users }
}

/** Mode 0700 for the users folder and 0600 for every file in it (mkdir and open only set modes when they create). */
async function keepPrivate(dir: string): Promise<void> {
  await chmod(dir, 0o700)
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await chmod(join(dir, entry.name), 0o600)
  }
}
