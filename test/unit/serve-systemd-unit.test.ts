import { execFile } from 'node:child_process'
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import {
  installServeService,
  serveCommandLine,
  serveServiceStatus,
  uninstallServeService,
} from '../../src/serve/systemd-service.js'
import { quoteUnitWord, renderServeUnit, SERVE_UNIT_NAME } from '../../src/serve/systemd-unit.js'
import { failure } from '../support/failure.js'
import { findTool } from '../support/tools.js'

/**
 * The systemd unit of `serve --install-service`: rendered (quoting, restart, state dir), checked by the real
 * `systemd-analyze verify`, and installed and removed in a temporary root instead of /etc.
 */
const run = promisify(execFile)
const work = mkdtempSync(join(tmpdir(), 'aa-systemd-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** Every file and link under `dir`, relative. */
function tree(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tree(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  )
}

describe('the serve service unit', () => {
  it('quotes words as systemd reads them', () => {
    expect(quoteUnitWord('/srv/astrago/bundle.tar')).toBe('/srv/astrago/bundle.tar')
    expect(quoteUnitWord('/srv/my bundles/a.tar')).toBe('"/srv/my bundles/a.tar"')
    expect(quoteUnitWord('50%$HOME')).toBe('50%%$$HOME')
    expect(quoteUnitWord('a"b\\c')).toBe('"a\\"b\\\\c"')
    expect(quoteUnitWord('')).toBe('""')
    expect(failure(() => quoteUnitWord('a\nb')).code).toBe('E_INPUT')
  })

  it('runs serve with the same flags, absolute paths, restart on failure, in the state dir', () => {
    const line = serveCommandLine('/srv/astrago/astrago-1.0.0.tar', {
      port: 8443,
      advertise: ['10.0.0.5'],
      stateDir: '/var/lib/astrago-airgap',
      users: ['field'],
      anonymousPull: false,
      workers: 4,
    })
    expect(line.args).toEqual([
      'serve',
      '/srv/astrago/astrago-1.0.0.tar',
      '--host',
      '0.0.0.0',
      '--port',
      '8443',
      '--state-dir',
      '/var/lib/astrago-airgap',
      '--advertise',
      '10.0.0.5',
      '--user',
      'field',
      '--no-anonymous-pull',
      '--workers',
      '4',
    ])
    expect(serveCommandLine('b.tar', { workers: 1 }).args).not.toContain('--workers')
    expect(line.healthUrl).toBe('https://127.0.0.1:8443/v2/')
    expect(line.caFile).toBe('/var/lib/astrago-airgap/ca/ca.crt')
    expect(serveCommandLine('b.tar', { insecure: true, host: '10.0.0.5', port: 80 }).healthUrl).toBe(
      'http://10.0.0.5:80/v2/',
    )
    expect(failure(() => serveCommandLine('b.tar', { port: 0 })).code).toBe('E_USAGE')
    // A delta bundle is served with its base, named by its absolute path.
    expect(serveCommandLine('/srv/d.tar', { base: 'base.tar' }).args.slice(-2)).toEqual([
      '--base',
      join(process.cwd(), 'base.tar'),
    ])
  })

  it('passes systemd-analyze verify, paths with spaces and % included', async () => {
    const dir = join(work, 'my bundles 100%')
    const stateDir = join(dir, 'state')
    const bundle = join(dir, 'astrago-1.0.0.tar')
    await run('mkdir', ['-p', stateDir])
    writeFileSync(bundle, '')
    const unit = renderServeUnit({
      command: [
        process.execPath,
        join(work, 'bin dir', 'run.js'),
        ...serveCommandLine(bundle, { stateDir }).args,
      ],
      bundle,
      stateDir,
      healthUrl: 'https://127.0.0.1:8443/v2/',
      caFile: join(stateDir, 'ca', 'ca.crt'),
    })
    expect(unit).toContain('Restart=on-failure')
    expect(unit).toContain('WantedBy=multi-user.target')
    expect(unit).toContain(`--state-dir "${stateDir.replace('%', '%%')}"`)
    const file = join(work, SERVE_UNIT_NAME)
    writeFileSync(file, unit)
    const verified = await run(findTool('systemd-analyze'), ['verify', file])
    // Warnings (an unknown key, a bad quote) go to stderr with exit code 0: there must be none.
    expect(verified.stderr).toBe('')

    // The check can fail: a typo in a key is reported.
    writeFileSync(file, unit.replace('Restart=', 'Restrat='))
    const typo = await run(findTool('systemd-analyze'), ['verify', file])
    expect(typo.stderr).toContain("Unknown key 'Restrat'")
  })

  it('installs into a root (unit file and enable link) and removes it leaving nothing', async () => {
    const root = join(work, 'root')
    const bundle = join(work, 'astrago-2.0.0.tar')
    writeFileSync(bundle, '')
    const installed = await installServeService({
      bundle,
      flags: { port: 8443, stateDir: join(work, 'state') },
      program: ['/usr/local/bin/astrago-airgap-installer'],
      root,
    })
    expect(installed.systemctl).toBe(false)
    expect(installed.command.slice(0, 3)).toEqual([
      '/usr/local/bin/astrago-airgap-installer',
      'serve',
      bundle,
    ])
    expect(tree(root).sort()).toEqual([
      `etc/systemd/system/${SERVE_UNIT_NAME}`,
      `etc/systemd/system/multi-user.target.wants/${SERVE_UNIT_NAME}`,
    ])
    expect(readlinkSync(installed.wantedBy)).toBe(`/etc/systemd/system/${SERVE_UNIT_NAME}`)
    expect(readFileSync(installed.unitFile, 'utf8')).toContain(
      `ExecStart=/usr/local/bin/astrago-airgap-installer serve ${bundle}`,
    )
    // Installing again replaces the unit, it does not fail on the existing link.
    await installServeService({
      bundle,
      flags: { port: 9443, stateDir: join(work, 'state') },
      program: ['/x'],
      root,
    })
    expect(readFileSync(installed.unitFile, 'utf8')).toContain('--port 9443')

    // Nothing listens on 127.0.0.1:9443 here: installed and enabled, not healthy.
    const status = await serveServiceStatus({ root, timeoutMs: 2000 })
    expect(status).toMatchObject({
      installed: true,
      enabled: true,
      healthy: false,
      healthUrl: 'https://127.0.0.1:9443/v2/',
    })

    expect(await uninstallServeService({ root })).toMatchObject({ removed: true, systemctl: false })
    expect(tree(root)).toEqual([])
    expect(await uninstallServeService({ root })).toMatchObject({ removed: false })
    expect(await serveServiceStatus({ root })).toMatchObject({ installed: false, enabled: false })
  })

  it('refuses a bundle that is not there', async () => {
    await expect(
      installServeService({
        bundle: join(work, 'missing.tar'),
        flags: {},
        program: ['/x'],
        root: join(work, 'r2'),
      }),
    ).rejects.toMatchObject({ code: 'E_INPUT' })
  })
})
