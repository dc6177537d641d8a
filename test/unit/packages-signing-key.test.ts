/**
 * withSigningKey signs in a private copy of a GnuPG home: the same key, an agent of its own that is stopped, the copy
 * removed afterwards (also when signing fails), and never an agent in the home itself. Real gpg.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AptSigningKey,
  detachSign,
  generateAptSigningKey,
  stopGpgAgent,
} from '../../src/packages/apt-signature.js'
import { withSigningKey } from '../../src/packages/signing-key.js'

const run = promisify(execFile)

async function agentSocket(home: string): Promise<string> {
  const env = { ...process.env, GNUPGHOME: home }
  return (await run('gpgconf', ['--homedir', home, '--list-dirs', 'agent-socket'], { env })).stdout.trim()
}

describe('signing with a private copy of the key home', () => {
  let work: string
  let shared: AptSigningKey
  const at = new Date('2026-01-02T03:04:05Z')

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'aa-sk-'))
    shared = await generateAptSigningKey({
      homeDir: join(work, 'home'),
      userId: 'Shared <shared@astrago.invalid>',
      created: at,
    })
    await stopGpgAgent(shared.homeDir)
  })

  afterAll(async () => {
    if (shared) await stopGpgAgent(shared.homeDir)
    rmSync(work, { recursive: true, force: true })
  })

  it('signs with the same key in a copy, leaves no agent socket in the shared home, and removes the copy', async () => {
    let copy = ''
    let copySocket = ''
    const signature = await withSigningKey(shared.homeDir, async (key) => {
      copy = key.homeDir
      expect(copy).not.toBe(shared.homeDir)
      expect(key.fingerprint).toBe(shared.fingerprint)
      expect(key.created).toEqual(shared.created)
      const text = await detachSign(key, 'Origin: test\n', at)
      copySocket = await agentSocket(copy)
      expect(existsSync(copySocket)).toBe(true)
      return text
    })
    expect(signature).toContain('BEGIN PGP SIGNATURE')
    expect(existsSync(await agentSocket(shared.homeDir))).toBe(false)
    expect(existsSync(join(shared.homeDir, 'S.gpg-agent'))).toBe(false)
    expect(existsSync(copySocket)).toBe(false)
    expect(existsSync(copy)).toBe(false)
  })

  it('gives byte-identical signatures on every run', async () => {
    const sign = () => withSigningKey(shared.homeDir, (key) => detachSign(key, 'Origin: test\n', at))
    expect(await sign()).toBe(await sign())
  })

  it('removes the copy and stops its agent when signing fails', async () => {
    let copy = ''
    await expect(
      withSigningKey(shared.homeDir, async (key) => {
        copy = key.homeDir
        await detachSign(key, 'x\n', at)
        throw new Error('failed while signing')
      }),
    ).rejects.toThrow('failed while signing')
    expect(existsSync(copy)).toBe(false)
    expect(existsSync(await agentSocket(shared.homeDir))).toBe(false)
  })

  it('rejects a key home that does not exist with E_INPUT', async () => {
    await expect(withSigningKey(join(work, 'missing'), async () => 1)).rejects.toMatchObject({
      code: 'E_INPUT',
    })
  })
})
