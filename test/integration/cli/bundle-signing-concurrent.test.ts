/**
 * Concurrent `bundle` runs sharing one signing key home (the per-user default): each run signs in a private copy of
 * the key home with its own gpg-agent, so no run kills the agent another one is using, and the shared home is left
 * without an agent. Real CLI, real gpg and gpgv, a real file server.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defaultSigningKeyHome } from '../../../src/packages/signing-key.js'
import { runCli } from '../../support/cli.js'
import { type ReleaseFixture, startReleaseFixture } from '../../support/release-fixture.js'

const run = promisify(execFile)

describe('concurrent bundle runs with the shared default signing key', () => {
  let fx: ReleaseFixture
  let definition: string
  let env: NodeJS.ProcessEnv

  beforeAll(async () => {
    fx = await startReleaseFixture('sign-parallel')
    const sha256 = fx.download('tool.bin', 'a tool\n')
    definition = fx.definition('parallel.yaml', {
      metadata: { name: 'parallel', version: '1.0.0' },
      files: [{ url: 'https://downloads.example.org/tool.bin', sha256, path: 'bin/tool.bin' }],
    })
    const data = join(fx.work, 'data')
    mkdirSync(data)
    env = { XDG_DATA_HOME: data, XDG_CACHE_HOME: join(fx.work, 'cache') }
  })

  afterAll(async () => {
    await fx?.stop()
  })

  it('signs every one of several rounds of parallel runs, each bundle verifies, no agent stays in the key home', async () => {
    const bundles: string[] = []
    for (let round = 0; round < 4; round++) {
      const runs = await Promise.all(
        [0, 1, 2].map((i) => {
          const output = join(fx.work, 'out', `r${round}-${i}`, 'parallel.tar')
          return runCli(['bundle', definition, '--output', output, '--json', ...fx.mirrors()], { env }).then(
            (res) => ({ res, output }),
          )
        }),
      )
      for (const { res, output } of runs) {
        expect(res.code, `round ${round}: ${res.stderr}${res.stdout}`).toBe(0)
        bundles.push(output)
      }
    }
    const home = defaultSigningKeyHome(env)
    const publicKey = join(fx.work, 'default-key.asc')
    writeFileSync(
      publicKey,
      (await run('gpg', ['--batch', '--homedir', home, '--armor', '--export'], { encoding: 'buffer' }))
        .stdout,
    )
    const fingerprints = new Set<string>()
    for (const bundle of bundles) {
      const res = await runCli(['verify', bundle, '--quick', '--key', publicKey, '--json'], { env })
      expect(res.code, res.stderr + res.stdout).toBe(0)
      expect(res.result.signature).toMatchObject({ signed: true, trusted: true })
      fingerprints.add(res.result.signature.fingerprint)
    }
    expect(fingerprints.size).toBe(1)
    // No gpg-agent was left running for the shared key home.
    const socket = (
      await run('gpgconf', ['--homedir', home, '--list-dirs', 'agent-socket'], {
        env: { ...process.env, GNUPGHOME: home },
      })
    ).stdout.trim()
    expect(existsSync(socket), socket).toBe(false)
  })
})
