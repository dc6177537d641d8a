/**
 * Hostile bundles through the built CLI, as a user would meet them: `verify`, `inspect`, `serve` and
 * `install --dry-run` each refuse every bundle of the corpus (test/support/hostile-bundle.ts) with E_INTEGRITY and a
 * non-zero exit, and none of them writes anything outside its own folders (no file named escape-marker appears
 * anywhere under the test's folder, its HOME or TMPDIR).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../support/cli.js'
import { bundleBytes, HOSTILE_BUNDLES } from '../../support/hostile-bundle.js'

function findEscapes(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => p.includes('escape-marker'))
}

describe('hostile bundles through the CLI', () => {
  let work: string
  let kubeconfig: string

  beforeAll(() => {
    // A work folder two levels down, so escapes with ../../.. still land under the test's own tmp folder.
    work = join(mkdtempSync(join(tmpdir(), 'astrago-hostile-cli-')), 'a', 'b', 'c')
    mkdirSync(work, { recursive: true })
    kubeconfig = join(work, 'kubeconfig')
    writeFileSync(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: t}}]\n',
    )
  })

  afterAll(() => {
    if (work) rmSync(join(work, '..', '..', '..'), { recursive: true, force: true })
  })

  const commands = (bundle: string, dir: string): [string, string[]][] => [
    ['verify', ['verify', bundle, '--json']],
    ['inspect', ['inspect', bundle, '--json']],
    [
      'serve',
      [
        'serve',
        bundle,
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--insecure',
        '--state-dir',
        join(dir, 'state'),
        '--json',
      ],
    ],
    ['install --dry-run', ['install', bundle, '--dry-run', '--kubeconfig', kubeconfig, '--json']],
  ]

  async function runAll(bundle: string, dir: string) {
    const env = { HOME: join(dir, 'home'), TMPDIR: join(dir, 'tmp') }
    mkdirSync(env.HOME, { recursive: true })
    mkdirSync(env.TMPDIR, { recursive: true })
    return await Promise.all(
      commands(bundle, dir).map(async ([name, args]) => ({
        name,
        res: await runCli(args, {
          cwd: dir,
          env,
          // A server that starts has accepted the bundle: stop it (the test then fails on its exit code).
          onStdoutLine: (line, kill) => {
            if (line.includes('"type":"serving"')) kill()
          },
        }),
      })),
    )
  }

  it('a valid bundle from the same tar writer passes verify and inspect', async () => {
    const dir = join(work, 'valid')
    mkdirSync(dir)
    const bundle = join(dir, 'bundle.tar')
    writeFileSync(bundle, bundleBytes())
    const [verify, inspect] = await runAll(bundle, dir)
    expect(verify!.res.code, verify!.res.stderr).toBe(0)
    expect(inspect!.res.code, inspect!.res.stderr).toBe(0)
  })

  it.each(HOSTILE_BUNDLES.map((b, i) => [b.name, b, i] as const))(
    'refuses: %s',
    async (_name, hostile, i) => {
      const dir = join(work, `case-${i}`)
      mkdirSync(dir)
      const bundle = join(dir, 'bundle.tar')
      hostile.write(bundle)
      for (const { name, res } of await runAll(bundle, dir)) {
        expect(res.code, `${name}: ${res.stdout.slice(-500)} ${res.stderr.slice(-500)}`).toBe(6)
        expect(res.error?.code, name).toBe('E_INTEGRITY')
        expect(res.error?.message.length, name).toBeGreaterThan(10)
      }
      expect(findEscapes(join(work, '..', '..', '..'))).toEqual([])
    },
  )
})
