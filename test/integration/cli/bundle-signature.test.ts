import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AptSigningKey,
  exportPublicKey,
  generateAptSigningKey,
  stopGpgAgent,
} from '../../../src/packages/apt-signature.js'
import { runCli } from '../../support/cli.js'
import { type ReleaseFixture, startReleaseFixture } from '../../support/release-fixture.js'

const run = promisify(execFile)
const fileSha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

/**
 * Signed bundles (issue 14): `bundle` signs bundle.json with a detached OpenPGP signature, the member bundle.json.sig
 * right after it; `verify --key` and `install --key` check it before anything else; gpgv checks it on its own. Real
 * registry, chart repository, gpg and gpgv.
 */
describe('signed bundles', () => {
  let fx: ReleaseFixture
  let release: AptSigningKey
  let other: AptSigningKey
  let releaseKey: string
  let releaseKeyArmored: string
  let otherKey: string
  let definition: string
  let signed: string

  beforeAll(async () => {
    fx = await startReleaseFixture('sign-it')
    await fx.push('docker.io/library/app', '1.0', 'app-1.0', 1_500_000)
    await fx.push('quay.io/demo/worker', '2.0', 'worker-2.0')
    await fx.chart('worker', '0.1.0', ['quay.io/demo/worker:2.0'])
    const toolSha = fx.download('tool.bin', 'a tool\n')
    mkdirSync(join(fx.work, 'manifests', 'base'), { recursive: true })
    writeFileSync(
      join(fx.work, 'manifests', 'base', 'namespace.yaml'),
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: signed\n',
    )
    definition = fx.definition('signed.yaml', {
      metadata: { name: 'signed', version: '1.0.0' },
      platforms: ['linux/amd64'],
      images: ['docker.io/library/app:1.0'],
      charts: [{ name: 'worker', version: '0.1.0', repo: 'https://charts.example.org/stable' }],
      files: [{ url: 'https://downloads.example.org/tool.bin', sha256: toolSha, path: 'bin/tool.bin' }],
      stages: [{ name: 'base', path: './manifests/base' }],
    })
    const created = new Date('2026-01-02T03:04:05Z')
    release = await generateAptSigningKey({
      homeDir: join(fx.work, 'release-key'),
      userId: 'Release team <release@astrago.invalid>',
      created,
    })
    other = await generateAptSigningKey({
      homeDir: join(fx.work, 'other-key'),
      userId: 'Someone else <else@astrago.invalid>',
      created,
    })
    releaseKey = join(fx.work, 'release.gpg')
    writeFileSync(releaseKey, await exportPublicKey(release))
    releaseKeyArmored = join(fx.work, 'release.asc')
    writeFileSync(releaseKeyArmored, await exportPublicKey(release, true))
    otherKey = join(fx.work, 'other.asc')
    writeFileSync(otherKey, await exportPublicKey(other, true))
    // An installer member, to show the signature sits between bundle.json and it.
    signed = await fx.bundle(
      definition,
      join(fx.work, 'out', 'signed.tar'),
      '--signing-key',
      release.homeDir,
      '--installer',
      '/usr/bin/true',
    )
  })

  afterAll(async () => {
    if (release) await stopGpgAgent(release.homeDir)
    if (other) await stopGpgAgent(other.homeDir)
    await fx?.stop()
  })

  const copyWith = (name: string, edit: (bytes: Buffer) => void) => {
    const path = join(fx.work, name)
    const bytes = readFileSync(signed)
    edit(bytes)
    writeFileSync(path, bytes)
    return path
  }

  it('puts bundle.json.sig right after bundle.json, before the installer, and inspect names the signer', async () => {
    const listing = (await run('tar', ['-tf', signed])).stdout.trim().split('\n')
    expect(listing.slice(0, 3)).toEqual(['bundle.json', 'bundle.json.sig', 'installer'])
    const inspect = await runCli(['inspect', signed, '--json'])
    expect(inspect.code, inspect.stderr).toBe(0)
    expect(inspect.result.signature).toMatchObject({ signer: release.fingerprint, matchesBundleJson: true })
    expect(inspect.result.metadata.signature.fingerprint).toBe(release.fingerprint)
    // The signature is not in the inventory (it signs the inventory).
    expect(inspect.result.metadata.members.map((m: { path: string }) => m.path)).not.toContain(
      'bundle.json.sig',
    )
    const text = await runCli(['inspect', signed])
    expect(text.stdout).toContain(`signed by: ${release.fingerprint}`)
  })

  it('verifies with the release key (binary or armoured, among several trusted keys), and with gpgv alone', async () => {
    const ok = await runCli(['verify', signed, '--key', releaseKey, '--json'])
    expect(ok.code, ok.stderr + ok.stdout).toBe(0)
    expect(ok.result.signature).toEqual({ signed: true, fingerprint: release.fingerprint, trusted: true })
    const several = await runCli([
      'verify',
      signed,
      '--quick',
      '--key',
      otherKey,
      '--key',
      releaseKeyArmored,
      '--json',
    ])
    expect(several.code, several.stderr).toBe(0)
    expect(several.result.signature.trusted).toBe(true)

    // The standard tool, as docs/release.md shows it.
    const out = join(fx.work, 'gpgv')
    mkdirSync(out)
    await run('tar', ['-xf', signed, '-C', out, 'bundle.json', 'bundle.json.sig'])
    const gpgv = await run('gpgv', [
      '--keyring',
      releaseKey,
      join(out, 'bundle.json.sig'),
      join(out, 'bundle.json'),
    ])
    expect(gpgv.stderr).toMatch(/Good signature from "Release team/)
  })

  it('without --key, a signed bundle is checked against the key it names', async () => {
    const res = await runCli(['verify', signed, '--quick', '--json'])
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.signature).toEqual({ signed: true, fingerprint: release.fingerprint, trusted: false })
    expect(res.events.some((e) => e.code === 'I_BUNDLE_SIGNED')).toBe(true)
    // Without GnuPG at all (a site with only the self-contained installer): Node checks the ed25519 signature itself.
    const noGpg = { PATH: join(fx.work, 'no-tools') }
    const bare = await runCli(['verify', signed, '--quick', '--json'], { env: noGpg })
    expect(bare.code, bare.stderr).toBe(0)
    expect(bare.result.signature.fingerprint).toBe(release.fingerprint)
    const tampered = copyWith('tampered-bare.tar', (bytes) => {
      const at = bytes.indexOf('"version": "1.0.0"', 512)
      bytes[at + '"version": "1.0.'.length] = '1'.charCodeAt(0)
    })
    const refused = await runCli(['verify', tampered, '--quick', '--json'], { env: noGpg })
    expect(refused.error?.code).toBe('E_SIGNATURE_INVALID')
    // A trusted key is judged by gpgv: without it, verify --key says what to install.
    const needsGpgv = await runCli(['verify', signed, '--quick', '--key', releaseKey, '--json'], {
      env: noGpg,
    })
    expect(needsGpgv.error?.code).toBe('E_ENVIRONMENT')
    expect(needsGpgv.error?.hints.join(' ')).toMatch(/gpgv/)
  })

  it('one flipped byte in bundle.json is E_SIGNATURE_INVALID, with or without a key', async () => {
    const tampered = copyWith('tampered.tar', (bytes) => {
      // bundle.json's data starts after its 512-byte header: turn its `"name": "signed"` into `"name": "signee"`.
      const at = bytes.indexOf('"name": "signed"', 512)
      expect(at).toBeGreaterThan(0)
      bytes[at + '"name": "signe'.length] = 'e'.charCodeAt(0)
    })
    for (const extra of [['--key', releaseKey], []]) {
      const res = await runCli(['verify', tampered, '--json', ...extra])
      expect(res.code, res.stderr).toBe(12)
      expect(res.error?.code).toBe('E_SIGNATURE_INVALID')
      expect(res.error?.message).toMatch(/bundle\.json was modified/)
    }
    // gpgv agrees.
    const out = join(fx.work, 'gpgv-bad')
    mkdirSync(out)
    await run('tar', ['-xf', tampered, '-C', out, 'bundle.json', 'bundle.json.sig'])
    await expect(
      run('gpgv', ['--keyring', releaseKey, join(out, 'bundle.json.sig'), join(out, 'bundle.json')]),
    ).rejects.toThrow(/BAD signature/)
  })

  it('a removed signature is E_SIGNATURE_MISSING, with or without a key', async () => {
    // Cut the second member (header and padded data) out of the tar; GNU tar --delete is unreliable on archives
    // that do not end on a 10 KiB record.
    const bytes = readFileSync(signed)
    const blocks = (size: number) => Math.ceil(size / 512) * 512
    const octal = (at: number) => Number.parseInt(bytes.subarray(at + 124, at + 136).toString('latin1'), 8)
    const sigHeader = 512 + blocks(octal(0))
    expect(bytes.subarray(sigHeader, sigHeader + 15).toString('latin1')).toBe('bundle.json.sig')
    const stripped = join(fx.work, 'stripped.tar')
    writeFileSync(
      stripped,
      Buffer.concat([
        bytes.subarray(0, sigHeader),
        bytes.subarray(sigHeader + 512 + blocks(octal(sigHeader))),
      ]),
    )
    expect((await run('tar', ['-tf', stripped])).stdout).not.toContain('bundle.json.sig')
    for (const extra of [['--key', releaseKey], []]) {
      const res = await runCli(['verify', stripped, '--json', ...extra])
      expect(res.code, res.stderr).toBe(10)
      expect(res.error?.code).toBe('E_SIGNATURE_MISSING')
    }
  })

  it('another key is E_SIGNATURE_UNTRUSTED, for verify and for install before it touches anything', async () => {
    const res = await runCli(['verify', signed, '--key', otherKey, '--json'])
    expect(res.code, res.stderr).toBe(11)
    expect(res.error?.code).toBe('E_SIGNATURE_UNTRUSTED')
    expect(res.error?.message).toContain(release.fingerprint)
    // install checks first: no cluster, kubeconfig or values are needed to be refused.
    const install = await runCli([
      'install',
      signed,
      '--dry-run',
      '--key',
      otherKey,
      '--kubeconfig',
      join(fx.work, 'no-such-kubeconfig'),
      '--json',
    ])
    expect(install.code, install.stderr).toBe(11)
    expect(install.error?.code).toBe('E_SIGNATURE_UNTRUSTED')
  })

  it('a bundle signed and named by another key is E_SIGNATURE_UNTRUSTED with the release key', async () => {
    const foreign = await fx.bundle(
      definition,
      join(fx.work, 'out', 'foreign.tar'),
      '--signing-key',
      other.homeDir,
    )
    const res = await runCli(['verify', foreign, '--quick', '--key', releaseKey, '--json'])
    expect(res.code).toBe(11)
    expect(res.error?.code).toBe('E_SIGNATURE_UNTRUSTED')
    expect(res.error?.message).toContain(other.fingerprint)
    expect((await runCli(['verify', foreign, '--quick', '--key', otherKey])).code).toBe(0)
  })

  it('a trusted key that has expired is E_SIGNATURE_UNTRUSTED, not a modified bundle', async () => {
    const home = join(fx.work, 'expired-key')
    mkdirSync(home, { mode: 0o700 })
    // A key valid for one day in 2020: the bundle is signed at its creation time, so signing works; it expired since.
    await run('gpg', [
      '--batch',
      '--homedir',
      home,
      '--faked-system-time',
      '1600000000!',
      '--passphrase',
      '',
      '--pinentry-mode',
      'loopback',
      '--quick-gen-key',
      'Expired <expired@astrago.invalid>',
      'ed25519',
      'sign',
      '1d',
    ])
    const expiredKey = join(fx.work, 'expired.gpg')
    writeFileSync(
      expiredKey,
      (await run('gpg', ['--batch', '--homedir', home, '--export'], { encoding: 'buffer' })).stdout,
    )
    try {
      const old = await fx.bundle(definition, join(fx.work, 'out', 'expired.tar'), '--signing-key', home)
      const res = await runCli(['verify', old, '--quick', '--key', expiredKey, '--json'])
      expect(res.code, res.stderr).toBe(11)
      expect(res.error?.code).toBe('E_SIGNATURE_UNTRUSTED')
      expect(res.error?.message).toMatch(/expired or was revoked/)
    } finally {
      await stopGpgAgent(home)
    }
  })

  it('is reproducible: the same key gives a byte-identical bundle, also in split volumes that verify', async () => {
    const again = await fx.bundle(
      definition,
      join(fx.work, 'again', 'signed.tar'),
      '--signing-key',
      release.homeDir,
      '--installer',
      '/usr/bin/true',
    )
    expect(fileSha(again)).toBe(fileSha(signed))
    const split = await fx.bundle(
      definition,
      join(fx.work, 'split', 'signed.tar'),
      '--signing-key',
      release.homeDir,
      '--installer',
      '/usr/bin/true',
      '--split-size',
      '1M',
    )
    expect(readdirSync(join(fx.work, 'split')).length).toBeGreaterThan(1)
    const res = await runCli(['verify', split, '--key', releaseKey, '--json'])
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.signature.trusted).toBe(true)
  })

  it('an extracted bundle folder verifies with the key; its edited bundle.json does not', async () => {
    const folder = join(fx.work, 'extracted')
    mkdirSync(folder)
    await run('tar', ['-xf', signed, '-C', folder])
    expect((await runCli(['verify', folder, '--key', releaseKey])).code).toBe(0)
    const json = readFileSync(join(folder, 'bundle.json'), 'utf8')
    writeFileSync(join(folder, 'bundle.json'), json.replace('"version": "1.0.0"', '"version": "1.0.1"'))
    const res = await runCli(['verify', folder, '--key', releaseKey, '--json'])
    expect(res.error?.code).toBe('E_SIGNATURE_INVALID')
  })

  it('signs with the default per-user key when no key is given (unsigned without gpg); --no-sign leaves it unsigned, which verifies with a warning', async () => {
    const dataHome = join(fx.work, 'data-home')
    const byDefault = join(fx.work, 'default', 'b.tar')
    const res = await runCli(['bundle', definition, '--output', byDefault, '--json', ...fx.mirrors()], {
      env: { XDG_DATA_HOME: dataHome },
    })
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.signedBy).toMatch(/^[0-9A-F]{40}$/)
    const listed = await run('gpg', [
      '--homedir',
      join(dataHome, 'astrago-airgap', 'signing-key'),
      '--with-colons',
      '--list-secret-keys',
    ])
    expect(listed.stdout).toContain(res.result.signedBy)

    // Without gpg (e.g. the self-contained installer alone), the default key cannot be made: unsigned, with a warning.
    // A key that was asked for is required.
    const noGpg = { PATH: join(fx.work, 'no-tools'), XDG_DATA_HOME: join(fx.work, 'data-home-2') }
    const bare = await runCli(
      ['bundle', definition, '--output', join(fx.work, 'bare', 'b.tar'), '--json', ...fx.mirrors()],
      { env: noGpg },
    )
    expect(bare.code, bare.stderr).toBe(0)
    expect(bare.result.signedBy).toBeUndefined()
    expect(bare.events.some((e) => e.code === 'W_BUNDLE_NOT_SIGNED')).toBe(true)
    const asked = await runCli(
      [
        'bundle',
        definition,
        '--output',
        join(fx.work, 'bare', 'k.tar'),
        '--signing-key',
        release.homeDir,
        '--json',
        ...fx.mirrors(),
      ],
      { env: noGpg },
    )
    expect(asked.error?.code).toBe('E_ENVIRONMENT')

    const unsigned = await fx.bundle(definition, join(fx.work, 'unsigned', 'u.tar'), '--no-sign')
    expect((await run('tar', ['-tf', unsigned])).stdout).not.toContain('bundle.json.sig')
    const ok = await runCli(['verify', unsigned, '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.result.signature).toEqual({ signed: false, trusted: false })
    expect(
      ok.events.some((e) => e.type === 'log' && e.level === 'warn' && e.code === 'W_BUNDLE_UNSIGNED'),
    ).toBe(true)
    const required = await runCli(['verify', unsigned, '--key', releaseKey, '--json'])
    expect(required.code).toBe(10)
    expect(required.error?.code).toBe('E_SIGNATURE_MISSING')
    expect((await runCli(['inspect', unsigned])).stdout).toContain('unsigned bundle')
  })
})
