import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import type { ProgressEvent } from '../../src/events/types.js'
import { createHtpasswdEntry, parseHtpasswd, UserStore, verifyBcrypt } from '../../src/serve/htpasswd.js'

const work = mkdtempSync(join(tmpdir(), 'astrago-htpasswd-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

// Cost 4 keeps the tests fast; real entries use 10.
const fastHash = (password: string) => bcrypt.hashSync(password, 4)

describe('htpasswd', () => {
  it('creates $2y$ entries that verify, like htpasswd -B', async () => {
    const entry = createHtpasswdEntry('field', 's3cret', 4)
    expect(entry).toMatch(/^field:\$2y\$04\$[./A-Za-z0-9]{53}$/)
    const users = parseHtpasswd(`${entry}\n`)
    const hash = users.get('field')!.hash
    expect(await verifyBcrypt('s3cret', hash)).toBe(true)
    expect(await verifyBcrypt('wrong', hash)).toBe(false)
  })

  it('reads what the real htpasswd -B writes', async () => {
    const line = execFileSync('htpasswd', ['-nbB', '-C', '4', 'admin', 'pa:ss word'], {
      encoding: 'utf8',
    }).trim()
    const users = parseHtpasswd(`# site users\n\n${line}\n`, 'users.htpasswd')
    expect([...users.keys()]).toEqual(['admin'])
    expect(users.get('admin')!.line).toBe(3)
    expect(await verifyBcrypt('pa:ss word', users.get('admin')!.hash)).toBe(true)
  })

  it('refuses non-bcrypt entries, naming file, line, user and the scheme', () => {
    const text = [
      `ok:${fastHash('x')}`,
      'old:$apr1$abcdefgh$0123456789abcdefghijkl',
      'sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=',
    ].join('\n')
    const error = (() => {
      try {
        parseHtpasswd(text, '/etc/astrago/htpasswd')
      } catch (e) {
        return e as AirgapError
      }
      throw new Error('no error')
    })()
    expect(error).toBeInstanceOf(AirgapError)
    expect(error.code).toBe('E_INPUT')
    expect(error.message).toMatch(/\/etc\/astrago\/htpasswd:2 \(user "old"\).*Apache MD5/)
    expect(() => parseHtpasswd('plain:secret\n')).toThrow(/htpasswd:1 .*plain text/)
    expect(() => parseHtpasswd('sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n')).toThrow(/SHA-1/)
    expect(() => parseHtpasswd('no-colon-here\n')).toThrow(/htpasswd:1 is not a "user:hash" entry/)
    expect(() => parseHtpasswd(`a:${fastHash('1')}\na:${fastHash('2')}\n`)).toThrow(
      /htpasswd:2 defines user "a" again \(first on line 1\)/,
    )
  })

  it('refuses user names and passwords that cannot work', () => {
    expect(() => createHtpasswdEntry('a:b', 'x')).toThrow(/user name/)
    expect(() => createHtpasswdEntry('', 'x')).toThrow(/user name/)
    expect(() => createHtpasswdEntry('a', '')).toThrow(/empty/)
    expect(() => createHtpasswdEntry('a', 'x'.repeat(73))).toThrow(/72 bytes/)
  })

  it('checks users from a file and a map, and sees a changed file without a restart', async () => {
    const file = join(work, 'htpasswd')
    writeFileSync(file, `alice:${fastHash('alice-pw')}\n`)
    const store = new UserStore({ htpasswdFile: file, users: { bob: fastHash('bob-pw') } })
    expect(store.hasUsers).toBe(true)
    expect(await store.verify('alice', 'alice-pw')).toBe(true)
    expect(await store.verify('alice', 'alice-pw')).toBe(true) // remembered
    expect(await store.verify('alice', 'bob-pw')).toBe(false)
    expect(await store.verify('bob', 'bob-pw')).toBe(true)
    expect(await store.verify('carol', 'x')).toBe(false)

    writeFileSync(file, `carol:${fastHash('carol-pw')}\n`)
    utimesSync(file, new Date(), new Date(Date.now() + 5000))
    await new Promise((r) => setTimeout(r, 1100))
    expect(await store.verify('carol', 'carol-pw')).toBe(true)
    expect(await store.verify('alice', 'alice-pw')).toBe(false)
  })

  it('refuses a bad users map or a missing file at once', () => {
    expect(() => new UserStore({ users: { bob: 'plain' } })).toThrow(/user "bob".*not a bcrypt hash/)
    expect(() => new UserStore({ htpasswdFile: join(work, 'missing') })).toThrow(
      /Cannot read the htpasswd file/,
    )
    expect(new UserStore({}).hasUsers).toBe(false)
  })

  it('revokes the users of a removed file, and of one it cannot read or parse, with a warning each time', async () => {
    const file = join(work, 'revoked')
    writeFileSync(file, `alice:${fastHash('alice-pw')}\n`)
    const events: ProgressEvent[] = []
    const store = new UserStore({ htpasswdFile: file, sink: { emit: (e) => events.push(e) } })
    expect(await store.verify('alice', 'alice-pw')).toBe(true)
    const later = () => new Promise((r) => setTimeout(r, 1100))
    const warnings = () => events.filter((e) => e.type === 'log' && e.level === 'warn')

    rmSync(file)
    await later()
    expect(await store.verify('alice', 'alice-pw')).toBe(false)
    expect(store.hasUsers).toBe(false)
    expect(warnings()).toEqual([expect.objectContaining({ code: 'W_HTPASSWD_REMOVED' })])
    expect(await store.verify('alice', 'alice-pw')).toBe(false)
    expect(warnings()).toHaveLength(1) // once, not on every request

    writeFileSync(file, `alice:${fastHash('alice-pw')}\n`)
    await later()
    expect(await store.verify('alice', 'alice-pw')).toBe(true)

    writeFileSync(file, `alice:${fastHash('alice-pw')}\nbroken line\n`)
    utimesSync(file, new Date(), new Date(Date.now() + 5000))
    await later()
    expect(await store.verify('alice', 'alice-pw')).toBe(false)
    expect(warnings().at(-1)).toMatchObject({
      code: 'W_HTPASSWD_UNREADABLE',
      message: expect.stringContaining(file),
    })

    // A file that cannot be read (here a folder in its place: root reads any file) refuses everyone too.
    rmSync(file)
    mkdirSync(file)
    await later()
    expect(await store.verify('alice', 'alice-pw')).toBe(false)
    expect(warnings().at(-1)).toMatchObject({ code: 'W_HTPASSWD_UNREADABLE' })
    rmSync(file, { recursive: true })
  })

  it('remembers wrong passwords, and checks unknown users against a hash of the same cost', async () => {
    const compare = vi.spyOn(bcrypt, 'compare')
    try {
      const store = new UserStore({ users: { dave: bcrypt.hashSync('dave-pw', 5) } })
      expect(await store.verify('dave', 'wrong')).toBe(false)
      expect(await store.verify('dave', 'wrong')).toBe(false)
      expect(compare).toHaveBeenCalledTimes(1) // the second wrong attempt answered at once
      expect(await store.verify('nobody', 'x')).toBe(false)
      expect(compare).toHaveBeenCalledTimes(2) // an unknown user costs a bcrypt check too
      expect(compare.mock.calls[1]![1]).toMatch(/^\$2[aby]\$05\$/)
      expect(await store.verify('dave', 'dave-pw')).toBe(true)
    } finally {
      compare.mockRestore()
    }
  })
})
