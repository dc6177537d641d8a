/**
 * The text commands print for their results without --json (src/cli/format/). Scripts and the integration tests read
 * some of it, so these pin it exactly.
 */
import { describe, expect, it } from 'vitest'
import type { VerifyResult } from '../../src/bundle/verify.js'
import { formatInitSiteResult } from '../../src/cli/format/init-site.js'
import { formatInstallResult } from '../../src/cli/format/install.js'
import { formatPullResult } from '../../src/cli/format/pull.js'
import { formatPushResult } from '../../src/cli/format/push.js'
import { formatServiceInstalled, formatServiceRemoved } from '../../src/cli/format/serve.js'
import { formatInstallStatus, formatServiceStatus } from '../../src/cli/format/status.js'
import { formatUninstallResult } from '../../src/cli/format/uninstall.js'
import { formatVerifyResult } from '../../src/cli/format/verify.js'
import type { InstallBundleResult } from '../../src/install/install-bundle.js'
import type { PullResult } from '../../src/publish/pull-bundle.js'
import type { PushResult } from '../../src/push/push-result.js'
import type { InitSiteResult } from '../../src/stages/init-site.js'
import type { InstallState } from '../../src/stages/state.js'

describe('result text', () => {
  it('verify', () => {
    const result: VerifyResult = {
      path: 'a.tar',
      name: 'demo',
      version: '1.0.0',
      members: 12,
      bytes: 3 * 1024 ** 2,
      mode: 'full',
      durationMs: 1500,
      signature: { signed: false, trusted: false },
    }
    expect(formatVerifyResult(result)).toBe('OK: demo 1.0.0, UNSIGNED, 12 members, 3.0 MiB rehashed in 1.5s')
    expect(formatVerifyResult({ ...result, mode: 'quick', durationMs: 20 })).toBe(
      'OK: demo 1.0.0, UNSIGNED, 12 members, 3.0 MiB present in 20ms',
    )
    expect(
      formatVerifyResult({ ...result, signature: { signed: true, fingerprint: 'ABCD', trusted: true } }),
    ).toBe('OK: demo 1.0.0, signed by ABCD (a trusted key), 12 members, 3.0 MiB rehashed in 1.5s')
    expect(
      formatVerifyResult({ ...result, signature: { signed: true, fingerprint: 'ABCD', trusted: false } }),
    ).toMatch(/signed by ABCD \(not checked against a trusted key: give --key\)/)
  })

  it('push', () => {
    const result: PushResult = {
      registry: 'harbor.site:443',
      prefix: 'astrago',
      images: 3,
      charts: 1,
      upToDate: 2,
      blobsUploaded: 4,
      blobsSkipped: 1,
      blobsMounted: 2,
      bytesUploaded: 2048,
      manifestsPushed: 5,
      durationMs: 2000,
      bytesPerSecond: 1024,
      artifacts: [],
    }
    expect(formatPushResult(result)).toBe(
      [
        'Pushed to harbor.site:443/astrago: 3 images, 1 charts (2 already there)',
        '  4 blobs uploaded (2.0 KiB), 2 mounted, 1 already there; 5 manifests',
        '  in 2.0s, 1.0 KiB/s',
      ].join('\n'),
    )
    expect(
      formatPushResult({ ...result, prefix: undefined, upToDate: 0, bytesUploaded: 0 }).split('\n'),
    ).toEqual([
      'Pushed to harbor.site:443: 3 images, 1 charts',
      '  4 blobs uploaded (0 B), 2 mounted, 1 already there; 5 manifests',
      '  in 2.0s',
    ])
  })

  it('pull: the file, its sha256, who signed it, what was downloaded', () => {
    const result: PullResult = {
      reference: 'oci://r.example/releases/demo:1.0.0',
      digest: 'sha256:m',
      name: 'demo',
      version: '1.0.0',
      bundleDigest: `sha256:${'a'.repeat(64)}`,
      size: 3 * 1024 ** 2,
      path: '/srv/demo-1.0.0.tar',
      paths: ['/srv/demo-1.0.0.tar'],
      chunks: 3,
      chunksDownloaded: 3,
      chunksResumed: 0,
      bytesDownloaded: 3 * 1024 ** 2,
      status: 'pulled',
      signature: { signed: true, fingerprint: 'ABCD', trusted: true },
      publishedSigner: 'ABCD',
      durationMs: 1500,
      bytesPerSecond: 2 * 1024 ** 2,
    }
    expect(formatPullResult(result).split('\n')).toEqual([
      'Pulled demo 1.0.0 into /srv/demo-1.0.0.tar',
      `  sha256 ${'a'.repeat(64)} (3.0 MiB), checked`,
      '  signed by ABCD, a trusted key (--key)',
      '  3 of 3 chunks downloaded (3.0 MiB) in 1.5s, 2.0 MiB/s',
    ])
    expect(
      formatPullResult({ ...result, signature: { signed: true, fingerprint: 'ABCD', trusted: false } }),
    ).toContain('  signed by ABCD, matching bundle.json (not checked against a trusted key: give --key)')
    expect(
      formatPullResult({ ...result, signature: { signed: false, trusted: false }, publishedSigner: 'ABCD' }),
    ).toContain('  not signed (published as signed by ABCD)')
  })

  it('uninstall', () => {
    expect(
      formatUninstallResult({
        namespace: 'ns',
        nothingToDo: true,
        removed: { objects: [], releases: [] },
        durationMs: 1,
      }),
    ).toBe('Nothing to uninstall in namespace ns.')
    expect(
      formatUninstallResult({
        bundle: { name: 'demo', version: '1.0.0', digest: 'sha256:x' },
        namespace: 'ns',
        nothingToDo: false,
        removed: {
          objects: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'a', namespace: 'ns' }],
          releases: [],
        },
        kept: [{ apiVersion: 'v1', kind: 'Secret', name: 'astrago-airgap-generated', namespace: 'ns' }],
        durationMs: 1,
      } as Parameters<typeof formatUninstallResult>[0]),
    ).toBe(
      'Removed demo 1.0.0: 1 objects, 0 releases. Kept the generated passwords (ns/astrago-airgap-generated); --purge removes them.',
    )
  })

  it('status and the service line', () => {
    const service = { installed: false, unitFile: '/etc/systemd/system/x.service', enabled: false }
    expect(formatServiceStatus(service)).toBe(
      'site server service: not installed (/etc/systemd/system/x.service)',
    )
    expect(
      formatServiceStatus({
        ...service,
        installed: true,
        enabled: true,
        active: 'active',
        healthy: true,
        healthUrl: 'u',
      }),
    ).toBe('site server service: enabled, active, healthy (u)')
    expect(formatServiceStatus({ ...service, installed: true, healthy: false, detail: 'refused' })).toBe(
      'site server service: installed, not enabled, NOT answering: refused',
    )
    const state = {
      bundle: { name: 'demo', version: '1.0.0', digest: 'sha256:d' },
      status: 'installed',
      startedAt: 'T1',
      finishedAt: 'T2',
      stages: [
        { name: 'base', status: 'ready', objects: [{}, {}], releases: [{ namespace: 'n', name: 'r' }] },
        { name: 'apps', status: 'failed', objects: [], releases: [], error: 'timeout' },
      ],
    } as unknown as InstallState
    expect(formatInstallStatus(state, service)).toBe(
      [
        'demo 1.0.0: installed (started T1, finished T2)',
        '  bundle digest sha256:d',
        '  ready     base: 2 objects, releases n/r',
        '  failed    apps: 0 objects — timeout',
      ].join('\n'),
    )
  })

  it('serve --install-service and --uninstall-service', () => {
    expect(formatServiceRemoved({ unitFile: '/u', removed: true })).toBe('Removed the service /u.')
    expect(formatServiceRemoved({ unitFile: '/u', removed: false })).toBe('No service to remove (/u).')
    expect(
      formatServiceInstalled({
        unit: 'astrago-airgap-serve.service',
        unitFile: '/u',
        systemctl: false,
        command: ['astrago-airgap', 'serve', 'b.tar'],
        healthUrl: 'https://h:8443/v2/',
      } as Parameters<typeof formatServiceInstalled>[0]).split('\n'),
    ).toEqual([
      'Installed the service astrago-airgap-serve.service (/u), enabled.',
      '  runs:    astrago-airgap serve b.tar',
      '  health:  https://h:8443/v2/  (astrago-airgap status --service)',
      '  remove:  astrago-airgap serve --uninstall-service',
    ])
  })

  it('init-site: the file itself for --output -, else where it went and what to fill in', () => {
    const result = {
      path: 'site.yaml',
      bundle: { name: 'demo', version: '1.0.0' },
      stages: ['base', 'apps'],
      required: ['externalHost'],
      generated: [],
      text: 'a: 1\n',
    } as unknown as InitSiteResult
    expect(formatInitSiteResult(result)).toBe(
      'Wrote site.yaml: site values of demo 1.0.0 (stages base, apps).\n  fill in: externalHost',
    )
    expect(formatInitSiteResult({ ...result, path: '-' })).toBe('a: 1')
  })

  it('install: stages, the generated values and where nodes pull from', () => {
    const result = {
      install: {
        bundle: { name: 'demo', version: '1.0.0', digest: 'sha256:d' },
        namespace: 'astrago-airgap',
        mode: 'install',
        nothingToDo: false,
        stages: [{ name: 'base', action: 'applied', objects: 3, releases: ['n/r'] }],
        pruned: { objects: [], releases: [] },
        generated: [
          { path: 'keycloak.adminPassword', value: 's3cret', created: true },
          { path: 'db.password', value: 'old', created: false },
        ],
        durationMs: 61_000,
      },
      pullFrom: { kind: 'served', where: 'https://10.0.0.5:8443', endsWithCommand: true },
    } as unknown as InstallBundleResult
    expect(formatInstallResult(result).split('\n')).toEqual([
      'demo 1.0.0: install in 1m01s',
      '  applied  base (3 objects, releases n/r)',
      '  generated 1 site values (kept in Secret astrago-airgap/astrago-airgap-generated; shown only this once):',
      '    keycloak.adminPassword: s3cret',
      '  nodes pull from https://10.0.0.5:8443, served by this command only while it ran: WARNING, it has stopped; run `astrago-airgap serve` (or serve --install-service) with the same state folder, or use an in-cluster registry (--push-to)',
    ])
  })
})
