/**
 * `install --insecure-registry HOST` applies to the hosts it names only: with another host named, a --push-to
 * target is still spoken to over TLS (so a plain-HTTP registry there is refused and receives nothing); naming the
 * target itself lets the push through over plain HTTP. A real distribution registry (plain HTTP) is the target; the
 * bundle is a small one with one image, and the kubeconfig points nowhere (the push comes before the stages).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../support/cli.js'
import { imageBundleBytes } from '../../support/hostile-bundle.js'
import { registryFetch, startRegistry, type TestRegistry } from '../../support/registry.js'

describe('install --insecure-registry', () => {
  let work: string
  let registry: TestRegistry
  let bundle: string
  let kubeconfig: string

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-insecure-registry-'))
    registry = await startRegistry()
    bundle = join(work, 'tiny.tar')
    writeFileSync(bundle, imageBundleBytes())
    kubeconfig = join(work, 'kubeconfig')
    writeFileSync(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: t}}]\n',
    )
  })

  afterAll(async () => {
    await registry?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  const install = (insecure: string, stateDir: string) =>
    runCli([
      'install',
      bundle,
      '--no-serve',
      '--push-to',
      registry.host,
      '--insecure-registry',
      insecure,
      '--helm',
      process.execPath,
      '--kubeconfig',
      kubeconfig,
      '--skip-preflight',
      '--no-audit',
      '--state-dir',
      join(work, stateDir),
      '--json',
    ])
  const tags = async () => {
    const res = await registryFetch(registry, '/v2/docker.io/test/tiny/tags/list')
    return res.ok ? ((await res.json()) as { tags: string[] }).tags : []
  }

  it('naming another host keeps TLS for the --push-to target: nothing reaches the plain-HTTP registry', async () => {
    const res = await install('other.example:5000', 'state-other')
    expect(res.code).not.toBe(0)
    expect(res.error?.code, res.stderr).toBe('E_REMOTE')
    expect(await tags()).toEqual([])
  })

  it('naming the target pushes over plain HTTP (then the stages fail on the unreachable cluster)', async () => {
    const res = await install(registry.host, 'state-target')
    expect(res.code).not.toBe(0)
    expect(res.error?.code, res.stderr).not.toBe('E_REMOTE')
    expect(await tags()).toEqual(['1'])
  })
})
