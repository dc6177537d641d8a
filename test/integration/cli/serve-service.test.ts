import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, runCli } from '../../support/cli.js'
import { freePort, loopbackServe, waitFor } from '../../support/net.js'
import { bundleOneImage } from '../../support/one-image-bundle.js'
import type { TestRegistry } from '../../support/registry.js'
import { stopServe } from '../../support/serve-process.js'

/**
 * `serve --install-service` with the built CLI, in a temporary root: the unit runs this CLI on the bundle with the
 * same flags; started as systemd would start it (its ExecStart, in its working directory), `status --service` finds
 * it healthy over TLS with the site CA; stopped, it is not; `--uninstall-service` leaves nothing.
 */
describe('serve as a system service', () => {
  let work: string
  let upstream: TestRegistry
  let bundle: string
  let server: ChildProcess | undefined

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'aa-serve-service-'))
    const fixture = await bundleOneImage(work, {
      image: 'docker.io/library/busybox:1.36',
      size: 50_000,
      name: 'site',
      version: '1.0.0',
    })
    upstream = fixture.upstream
    bundle = fixture.bundle
  }, 180_000)

  afterAll(async () => {
    await stopServe(server)
    await upstream?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('installs a unit that serves the bundle, which status finds healthy, and uninstalls it', async () => {
    const root = join(work, 'root')
    const port = await freePort()
    const installed = await runCli([
      'serve',
      bundle,
      '--install-service',
      '--root',
      root,
      ...loopbackServe(port),
      '--json',
    ])
    expect(installed.code, installed.stderr).toBe(0)
    const service = installed.result.service
    expect(service.command).toEqual([
      process.execPath,
      CLI,
      'serve',
      bundle,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--state-dir',
      join(work, 'astrago-airgap-site'),
      '--advertise',
      '127.0.0.1',
    ])
    const unit = readFileSync(join(root, 'etc/systemd/system/astrago-airgap-serve.service'), 'utf8')
    expect(unit).toContain(`ExecStart=${service.command.join(' ')}`)
    expect(unit).toContain('Restart=on-failure')

    const notRunning = await runCli(['status', '--service', '--root', root, '--json'])
    expect(notRunning.result.service).toMatchObject({ installed: true, enabled: true, healthy: false })

    // As systemd would run it.
    const [program, ...args] = service.command as string[]
    server = spawn(program!, args, { cwd: join(work, 'astrago-airgap-site'), stdio: 'ignore' })
    let healthy: Record<string, unknown> = {}
    await waitFor(
      'the service to answer',
      async () => {
        const res = await runCli(['status', '--service', '--root', root, '--json'])
        healthy = res.result?.service ?? {}
        return healthy.healthy === true
      },
      { timeoutMs: 60_000, describe: () => JSON.stringify(healthy) },
    )
    expect(healthy).toMatchObject({ installed: true, healthUrl: `https://127.0.0.1:${port}/v2/` })
    const text = await runCli(['status', '--service', '--root', root])
    expect(text.stdout).toContain('site server service: enabled, healthy')

    server.kill('SIGTERM')
    await new Promise((r) => server!.once('exit', r))
    const stopped = await runCli(['status', '--service', '--root', root, '--json'])
    expect(stopped.result.service.healthy).toBe(false)
    expect(stopped.result.service.detail).toContain('ECONNREFUSED')

    const removed = await runCli(['serve', '--uninstall-service', '--root', root, '--json'])
    expect(removed.result.service).toMatchObject({ removed: true })
    expect(readdirTree(root)).toEqual([])
  }, 180_000)
})

function readdirTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => e.name)
}
