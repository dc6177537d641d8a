/**
 * Credentials that cannot be had are never dropped silently: a Docker config file that is there but unreadable, a
 * credential helper that fails or answers garbage, and an auth entry that does not decode each give a warning naming
 * the file or helper (and no secret), and the lookup goes on without them. A helper that simply has nothing for the
 * registry, and a missing config file, stay quiet. The helpers are small programs on PATH, run as Docker runs them.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DefaultCredentialStore } from '../../src/oci/docker-config.js'

const work = mkdtempSync(join(tmpdir(), 'astrago-docker-config-'))
const bin = join(work, 'bin')
const oldPath = process.env.PATH

function helper(name: string, script: string): void {
  const file = join(bin, `docker-credential-${name}`)
  writeFileSync(file, `#!/bin/sh\ncat >/dev/null\n${script}\n`)
  chmodSync(file, 0o755)
}

function config(name: string, content: unknown): string {
  const dir = join(work, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'config.json'), JSON.stringify(content))
  return join(dir, 'config.json')
}

async function lookup(file: string, registry = 'registry.example:5000') {
  const warnings: string[] = []
  const credential = await new DefaultCredentialStore({}, file, (m) => warnings.push(m)).get(registry)
  return { credential, warnings }
}

beforeAll(() => {
  mkdirSync(bin)
  helper('broken', 'echo "keychain locked: secret-ish-detail" >&2; exit 3')
  helper('garbage', 'echo "not json"')
  helper('empty', 'echo "credentials not found in native keychain"; exit 1')
  helper('good', 'echo \'{"Username":"u","Secret":"s3cret-from-helper"}\'')
  process.env.PATH = `${bin}:${oldPath}`
})

afterAll(() => {
  process.env.PATH = oldPath
  rmSync(work, { recursive: true, force: true })
})

describe('Docker credentials: no silent fallback', () => {
  it('warns about a config file that is there but cannot be read', async () => {
    const dir = join(work, 'unreadable')
    mkdirSync(join(dir, 'config.json'), { recursive: true }) // a folder where the file should be: EISDIR
    const { credential, warnings } = await lookup(join(dir, 'config.json'))
    expect(credential).toBeUndefined()
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain(join(dir, 'config.json'))
  })

  it('stays quiet without a config file', async () => {
    expect((await lookup(join(work, 'none', 'config.json'))).warnings).toEqual([])
  })

  it('warns about a failing helper, naming it, without its output', async () => {
    const { credential, warnings } = await lookup(config('broken', { credsStore: 'broken' }))
    expect(credential).toBeUndefined()
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('docker-credential-broken')
    expect(warnings[0]).not.toContain('secret-ish-detail')
  })

  it('warns about a helper answering garbage', async () => {
    const { warnings } = await lookup(
      config('garbage', { credHelpers: { 'registry.example:5000': 'garbage' } }),
    )
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('docker-credential-garbage')
  })

  it('stays quiet when the helper has nothing for the registry, and uses a good one', async () => {
    expect(await lookup(config('empty', { credsStore: 'empty' }))).toEqual({
      credential: undefined,
      warnings: [],
    })
    expect(await lookup(config('good', { credsStore: 'good' }))).toEqual({
      credential: { username: 'u', password: 's3cret-from-helper' },
      warnings: [],
    })
  })

  it('warns about an auth entry that does not decode', async () => {
    const file = config('bad-auth', { auths: { 'registry.example:5000': { auth: 'bm90LWEtcGFpcg==' } } })
    const { credential, warnings } = await lookup(file)
    expect(credential).toBeUndefined()
    expect(warnings[0]).toContain(file)
  })
})
