import { type ChildProcess, execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../support/cli.js'
import { freePort, loopbackServe } from '../../support/net.js'
import { bundleOneImage } from '../../support/one-image-bundle.js'
import type { TestRegistry } from '../../support/registry.js'
import { type Serving, startServe, stopServe } from '../../support/serve-process.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)

/** `astrago-airgap serve` as a site runs it: the built CLI, TLS with the generated site CA, real skopeo and curl. */
describe('serve command', () => {
  let work: string
  let upstream: TestRegistry
  let bundle: string
  let server: ChildProcess | undefined
  let serving: Serving
  let digest: string

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-serve-cmd-'))
    const fixture = await bundleOneImage(work, {
      image: 'nvcr.io/nvidia/k8s-device-plugin:v0.17.0',
      size: 400_000,
      name: 'site',
      version: '2.0.0',
    })
    upstream = fixture.upstream
    bundle = fixture.bundle
    digest = fixture.digest
    const started = await startServe([bundle, ...loopbackServe(await freePort()), '--user', 'field'])
    server = started.server
    serving = started.serving
  })

  afterAll(async () => {
    await stopServe(server)
    await upstream?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('serves the image over TLS with the site CA, under its full upstream name', async () => {
    expect(serving.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(serving.upstreams).toEqual(['nvcr.io'])
    const certDir = join(work, 'certs')
    mkdirSync(certDir)
    copyFileSync(serving.caFile, join(certDir, 'ca.crt'))
    const { stdout } = await run(findTool('skopeo'), [
      'inspect',
      '--raw',
      '--cert-dir',
      certDir,
      `docker://${serving.registryHost}/nvcr.io/nvidia/k8s-device-plugin:v0.17.0`,
    ])
    expect(`sha256:${createHash('sha256').update(stdout).digest('hex')}`).toBe(digest)
  })

  it('hands nodes their setup: hosts.toml per upstream and an idempotent script', async () => {
    const toml = await run('curl', [
      '-fsS',
      '--cacert',
      serving.caFile,
      `${serving.url}/node-setup/hosts/nvcr.io/hosts.toml`,
    ])
    expect(toml.stdout).toContain(`server = "${serving.url}/v2/nvcr.io"`)
    expect(toml.stdout).toContain('override_path = true')
    const script = await run('curl', ['-fsS', '--cacert', serving.caFile, serving.nodeSetupUrl])
    const root = join(work, 'node-root')
    mkdirSync(root)
    writeFileSync(join(work, 'node-setup.sh'), script.stdout)
    // Exit 3: the dry run names what needs attention on this "node" (no containerd here); it changes nothing.
    const dry = await run('sh', [join(work, 'node-setup.sh'), '--dry-run'], {
      env: { ...process.env, ASTRAGO_ROOT: root },
    }).catch((error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }))
    expect([0, 3]).toContain('code' in dry ? dry.code : 0)
    expect(dry.stdout).toContain('nothing was changed')
    expect(dry.stdout).toContain('/etc/containerd/certs.d/nvcr.io/hosts.toml')
    expect(readFileSync(serving.caFile, 'utf8')).toContain('BEGIN CERTIFICATE')
  })

  it('creates a push user with a password kept in the state folder; pushes need it', async () => {
    expect(serving.users).toEqual([
      { name: 'field', passwordFile: expect.stringMatching(/users\/field\.password$/), created: true },
    ])
    const password = readFileSync(serving.users[0]!.passwordFile, 'utf8').trim()
    expect(password.length).toBeGreaterThanOrEqual(20)
    const certDir = join(work, 'push-certs')
    mkdirSync(certDir)
    copyFileSync(serving.caFile, join(certDir, 'ca.crt'))
    const source = `docker://${serving.registryHost}/nvcr.io/nvidia/k8s-device-plugin:v0.17.0`
    const target = `docker://${serving.registryHost}/site/extra/device-plugin:local`
    const copy = (creds: string[]) =>
      run(findTool('skopeo'), [
        '--insecure-policy',
        'copy',
        '--src-cert-dir',
        certDir,
        '--dest-cert-dir',
        certDir,
        ...creds,
        source,
        target,
      ])
    await expect(copy([])).rejects.toThrow(/unauthorized|authentication required|denied/i)
    await copy(['--dest-creds', `field:${password}`])
    const { stdout } = await run(findTool('skopeo'), ['inspect', '--raw', '--cert-dir', certDir, target])
    expect(`sha256:${createHash('sha256').update(stdout).digest('hex')}`).toBe(digest)
  })

  it('refuses a second server on the same port, naming it', async () => {
    const port = Number(new URL(serving.url).port)
    const res = await runCli(['serve', bundle, '--host', '127.0.0.1', '--port', String(port), '--json'])
    expect(res.code).toBe(7)
    expect(res.error?.message).toContain(`Port ${port}`)
  })
})
