import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ensureSiteUsers } from '../../src/serve/site-users.js'

/** Site users: passwords are made once, and their files are kept private on every run, whatever their mode became. */
const work = mkdtempSync(join(tmpdir(), 'astrago-site-users-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const mode = (path: string) => statSync(path).mode & 0o777

describe('site users', () => {
  it('puts existing password files back to 0600 and their folder to 0700 on every run', async () => {
    const first = await ensureSiteUsers(work, ['pusher'])
    const [user] = first.users
    expect(user!.created).toBe(true)
    const password = readFileSync(user!.passwordFile, 'utf8')
    chmodSync(user!.passwordFile, 0o644)
    chmodSync(first.htpasswdFile, 0o666)
    chmodSync(join(work, 'users'), 0o755)

    const second = await ensureSiteUsers(work, ['pusher'])
    expect(second.users[0]!.created).toBe(false)
    expect(readFileSync(user!.passwordFile, 'utf8')).toBe(password)
    expect(mode(user!.passwordFile)).toBe(0o600)
    expect(mode(second.htpasswdFile)).toBe(0o600)
    expect(mode(join(work, 'users'))).toBe(0o700)
  })
})
