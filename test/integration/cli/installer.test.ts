import { execFile, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliResult, runCli } from '../../support/cli.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { freePort, loopbackServe } from '../../support/net.js'
import { prepareSiteBundle, type SiteBundleFixture } from '../../support/site-bundle.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '..', '..', '..')

/**
 * The self-contained installer on a site without Node: scripts/build-installer makes it, `bundle` carries it as the
 * second member (mode 0755), and on the "site" (a PATH holding only helm, tar and sh) `tar -xf` takes it out and it
 * inspects, verifies and installs the bundle into a real control plane, with the same --json output and exit codes as
 * the CLI run by Node.
 */
describe('self-contained installer', () => {
  let work: string
  let fixture: SiteBundleFixture | undefined
  let cp: ControlPlane
  let bundle: string
  let site: string
  let siteEnv: NodeJS.ProcessEnv
  let bundleArgs: string[]
  const helm = findTool('helm')

  /** Runs ./installer in the site folder with the site's environment, collecting what runCli collects. */
  const runInstaller = (args: string[]): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(join(site, 'installer'), args, {
        cwd: site,
        env: siteEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => {
        stdout += d
      })
      child.stderr.on('data', (d: Buffer) => {
        stderr += d
      })
      child.on('error', reject)
      child.on('close', (code) => {
        const events = stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
        const last = events.at(-1) as
          | { type?: string; result?: unknown; error?: CliResult['error'] }
          | undefined
        resolve({
          code: code ?? 1,
          stdout,
          stderr,
          events,
          result: last?.type === 'result' ? last.result : undefined,
          error: last?.type === 'error' ? last.error : undefined,
        })
      })
    })

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-installer-'))
    // Builds the installer from the current dist/ (cached: instant when nothing changed).
    const built = await run('bash', [join(ROOT, 'scripts', 'build-installer')], { cwd: ROOT })
    expect(built.stdout.trim().split('\n').at(-1)).toMatch(
      /dist\/installer\/astrago-airgap-linux-(amd64|arm64)$/,
    )
    ;[fixture, cp] = await Promise.all([prepareSiteBundle(work, { helm, web: true }), startControlPlane()])
    bundleArgs = fixture.bundleArgs
    // No --installer: the bundle takes dist/installer/astrago-airgap-linux-<arch> by default.
    const res = await runCli([...bundleArgs, '--output-dir', work])
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.installer).toMatchObject({ path: 'installer', platform: hostPlatform() })
    bundle = res.result.path

    // The site: a folder, and a PATH with only what the install needs. No node.
    site = join(work, 'site')
    const bin = join(site, 'bin')
    mkdirSync(bin, { recursive: true })
    for (const [name, target] of [
      ['helm', helm],
      ['tar', findTool('tar')],
      ['sh', findTool('sh')],
    ] as const) {
      symlinkSync(target, join(bin, name))
    }
    siteEnv = { PATH: bin, HOME: join(site, 'home'), TMPDIR: site, LANG: 'C.UTF-8' }
    mkdirSync(siteEnv.HOME!)
  })

  afterAll(async () => {
    await Promise.all([fixture?.stop(), cp?.stop()])
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('is the third member of the bundle (after bundle.json and its signature), executable, and listed in its inventory', async () => {
    const { stdout } = await run('tar', ['-tvf', bundle])
    const lines = stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^-rw-r--r-- 0\/0 .* bundle\.json$/)
    expect(lines[1]).toMatch(/^-rw-r--r-- 0\/0 .* bundle\.json\.sig$/)
    expect(lines[2]).toMatch(/^-rwxr-xr-x 0\/0 .* installer$/)
    const inspect = await runCli(['inspect', bundle, '--json'])
    expect(inspect.code, inspect.stderr).toBe(0)
    const { metadata } = inspect.result
    expect(metadata.members[0]).toEqual({
      path: 'installer',
      size: metadata.installer.size,
      sha256: metadata.installer.sha256,
    })
    expect(metadata.installer.version).toBe(
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
    )
    const text = await runCli(['inspect', bundle])
    expect(text.stdout).toContain(`installer: installer (${hostPlatform()}`)
  })

  it('is extracted with tar and runs where there is no node', async () => {
    expect(spawnSync('sh', ['-c', 'command -v node'], { env: siteEnv }).status).not.toBe(0)
    const extract = spawnSync('tar', ['-xf', bundle, 'installer'], {
      cwd: site,
      env: siteEnv,
      encoding: 'utf8',
    })
    expect(extract.status, extract.stderr).toBe(0)
    expect(statSync(join(site, 'installer')).mode & 0o777).toBe(0o755)

    const version = await runInstaller(['--version'])
    expect(version.code, version.stderr).toBe(0)
    expect(version.stdout).toMatch(/^astrago-airgap\/\d+\.\d+\.\d+\S* linux-(x64|arm64) node-v20\./)
    expect(version.stderr).toBe('')
    // The same commands, topics and flags as the CLI run by Node.
    const [help, cliHelp] = await Promise.all([runInstaller(['--help']), runCli(['--help'])])
    expect(help.code).toBe(0)
    expect(help.stdout).toBe(cliHelp.stdout)
    const [verifyHelp, cliVerifyHelp] = await Promise.all([
      runInstaller(['help', 'verify']),
      runCli(['help', 'verify']),
    ])
    expect(verifyHelp.stdout).toContain('--quick')
    expect(verifyHelp.stdout).toBe(cliVerifyHelp.stdout)

    const inspect = await runInstaller(['inspect', bundle, '--json'])
    expect(inspect.code, inspect.stderr).toBe(0)
    expect(inspect.result.metadata.installer.platform).toBe(hostPlatform())
    expect(inspect.result.metadata.images.length).toBe(2)

    const verify = await runInstaller(['verify', bundle, '--json'])
    expect(verify.code, verify.stderr).toBe(0)
    expect(verify.result).toMatchObject({ mode: 'full', name: 'site', version: '1.0.0' })
    expect(verify.result.members).toBe(inspect.result.metadata.members.length)
  })

  it('serves with workers that run its own command line', async () => {
    const port = await freePort()
    const server = spawn(
      join(site, 'installer'),
      ['serve', bundle, ...loopbackServe(port), '--insecure', '--workers', '2', '--json'],
      { cwd: site, env: siteEnv, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    try {
      const serving = await new Promise<{ url: string; workerPids: number[] }>((resolve, reject) => {
        let out = ''
        server.stdout.on('data', (d: Buffer) => {
          out += d
          for (const line of out.split('\n'))
            if (line.includes('"type":"serving"')) resolve(JSON.parse(line).serving)
        })
        server.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)))
        server.once('error', reject)
      })
      const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      expect(serving.workerPids).toHaveLength(2)
      for (const pid of serving.workerPids) expect(cmdline(pid)).toBe(cmdline(server.pid!))
      const image = `${serving.url}/v2/docker.io/xiilab/astrago`
      type Manifest = { config?: { digest: string; size: number }; manifests?: { digest: string }[] }
      const manifestOf = async (reference: string) =>
        (await (
          await fetch(`${image}/manifests/${reference}`, {
            headers: {
              accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
            },
          })
        ).json()) as Manifest
      const top = await manifestOf('core-v1')
      const config = (top.config ? top : await manifestOf(top.manifests![0]!.digest)).config!
      const blob = await fetch(`${image}/blobs/${config.digest}`)
      expect([blob.status, (await blob.arrayBuffer()).byteLength]).toEqual([200, config.size])
    } finally {
      if (server.pid !== undefined && server.exitCode === null) {
        const exited = new Promise((resolve) => server.once('exit', resolve))
        server.kill('SIGTERM')
        await exited
      }
    }
  })

  it('installs the bundle into the cluster', async () => {
    const port = await freePort()
    const res = await runInstaller([
      'install',
      bundle,
      '--kubeconfig',
      cp.kubeconfigPath,
      '--json',
      ...loopbackServe(port),
    ])
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.code).toBe(0)
    expect(res.result.install.mode).toBe('install')
    expect(
      res.result.install.stages.map((s: { name: string; action: string }) => `${s.name}:${s.action}`),
    ).toEqual(['core:applied', 'web:applied'])
    const status = await runInstaller(['status', '--kubeconfig', cp.kubeconfigPath, '--json'])
    expect(status.code, status.stderr).toBe(0)
    const releases = JSON.parse(
      (await run(helm, ['--kubeconfig', cp.kubeconfigPath, 'list', '-n', 'web', '-o', 'json'])).stdout,
    )
    expect(releases[0]).toMatchObject({ name: 'web', status: 'deployed' })
  })

  it('bundles too, and the bundles it makes carry it', async () => {
    const again = join(site, 'again.tar')
    const res = await runInstaller([...bundleArgs, '-o', again])
    expect(res.code, res.stderr).toBe(0)
    const first = await runCli(['inspect', bundle, '--json'])
    const second = await runCli(['inspect', again, '--json'])
    expect(second.result.metadata.installer.sha256).toBe(first.result.metadata.installer.sha256)
    expect(second.result.metadata.images).toEqual(first.result.metadata.images)
    rmSync(again)
  })

  it('bundle --no-installer leaves it out; --installer must name a Linux executable', async () => {
    const without = await runCli([
      ...bundleArgs,
      '--output',
      join(work, 'without', 'site.tar'),
      '--no-installer',
    ])
    expect(without.code, without.stderr).toBe(0)
    expect(without.result.installer).toBeUndefined()
    const listing = (await run('tar', ['-tf', without.result.path])).stdout.split('\n')
    expect(listing[2]).toBe('oci/oci-layout')
    expect(listing).not.toContain('installer')

    const notExecutable = join(work, 'not-an-installer')
    writeFileSync(notExecutable, '#!/bin/sh\necho hello\n')
    const bad = await runCli([
      ...bundleArgs,
      '--output',
      join(work, 'bad', 'site.tar'),
      '--installer',
      notExecutable,
    ])
    expect(bad.code).toBe(3)
    expect(bad.error?.code).toBe('E_INPUT')
    expect(bad.error?.message).toContain(notExecutable)
  })

  it('fails as the CLI does: the same --json error and exit code', async () => {
    const missing = join(site, 'no-such-bundle.tar')
    const [installer, cli] = await Promise.all([
      runInstaller(['verify', missing, '--json']),
      runCli(['verify', missing, '--json']),
    ])
    expect(installer.code).toBe(3) // E_INPUT, docs/exit-codes.md
    expect(installer.error?.code).toBe('E_INPUT')
    expect(installer.code).toBe(cli.code)
    expect(installer.stdout).toBe(cli.stdout)

    const [badFlag, cliBadFlag] = await Promise.all([
      runInstaller(['inspect', bundle, '--no-such-flag', '--json']),
      runCli(['inspect', bundle, '--no-such-flag', '--json']),
    ])
    expect(badFlag.code).toBe(2) // E_USAGE
    expect(badFlag.code).toBe(cliBadFlag.code)
    expect(badFlag.stdout).toBe(cliBadFlag.stdout)
  })
})

function hostPlatform(): string {
  return process.arch === 'arm64' ? 'linux/arm64' : 'linux/amd64'
}
