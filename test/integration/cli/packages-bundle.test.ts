import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleReader } from '../../../src/bundle/reader.js'
import { silentSink } from '../../../src/events/types.js'
import {
  exportPublicKey,
  generateAptSigningKey,
  readSigningKey,
  stopGpgAgent,
} from '../../../src/packages/apt-signature.js'
import { type ServingBundle, serveBundle } from '../../../src/serve/serve-bundle.js'
import { runCli } from '../../support/cli.js'
import { type DebianMirror, debianMirror } from '../../support/debian-mirror.js'
import { inChroot, testCache, unpackMinbase } from '../../support/debootstrap.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { createRpmUpstream, EXPECTED } from '../../support/rpm-upstream.js'
import { findTool } from '../../support/tools.js'

/**
 * `packages:` end to end: a definition asking for packages from the Debian archive this machine's apt uses is
 * bundled by the real CLI (closure from the signed indices, .deb files streamed into the bundle and checked), shown
 * by `inspect`, checked by `verify` (a damaged .deb is named), served, and a fresh minbase chroot set up by the
 * served node-setup.sh alone (our key, our source, the site CA for https) installs the packages from the bundle.
 */
const run = promisify(execFile)
const REQUESTS = ['socat', 'conntrack']

describe('package repositories in a bundle, served to a node', () => {
  let mirror: DebianMirror
  let work: string
  let keyHome: string
  let bundle: string
  let serving: ServingBundle | undefined

  beforeAll(async () => {
    mirror = debianMirror('bookworm')
    work = await mkdtemp(join(tmpdir(), 'aa-pkgbundle-'))
    keyHome = join(work, 'key')
    await generateAptSigningKey({
      homeDir: keyHome,
      userId: 'astrago-airgap test bundle key <test@astrago.invalid>',
      created: new Date('2026-01-01T00:00:00Z'),
    })
    await writeFile(
      join(work, 'nodes.yaml'),
      [
        'apiVersion: airgap.astrago.io/v1alpha1',
        'kind: Bundle',
        'metadata: { name: nodes, version: 1.0.0 }',
        'packages:',
        '  - name: debian-bookworm',
        '    apt:',
        `      mirror: ${mirror.url}`,
        `      suite: ${mirror.suite}`,
        '      components: [main]',
        '      architectures: [amd64]',
        `      keyrings: [${mirror.keyring}]`,
        '    baseline: { priorities: [required], packages: [apt] }',
        `    packages: [${REQUESTS.join(', ')}]`,
        '',
      ].join('\n'),
    )
    bundle = join(work, 'nodes-1.0.0.tar')
    const env = { XDG_CACHE_HOME: join(testCache, '..') }
    const built = await runCli(['bundle', join(work, 'nodes.yaml'), '-o', bundle, '--signing-key', keyHome], {
      env,
    })
    expect(built.code, built.stderr).toBe(0)
    expect(built.stdout).toMatch(/ \d+ packages; /)
  }, 600_000)

  afterAll(async () => {
    await serving?.stop()
    await stopGpgAgent(keyHome)
    await rm(work, { recursive: true, force: true })
  })

  it('records the closure in bundle.json, lists it with inspect, and bundles byte-identically again', async () => {
    const reader = await BundleReader.open(bundle)
    const [repository] = reader.metadata.packages ?? []
    await reader.close()
    expect(repository?.path).toBe('repo/apt/debian-bookworm')
    expect(repository?.requested).toEqual(REQUESTS)
    const names = repository!.packages.map((p) => p.name)
    expect(names).toEqual(expect.arrayContaining([...REQUESTS, 'libnetfilter-conntrack3']))
    // Nothing the baseline (required + apt) has is carried.
    expect(names).not.toContain('libc6')
    expect(repository!.metadata).toEqual(
      expect.arrayContaining(['dists/bookworm/InRelease', 'dists/bookworm/main/binary-amd64/Packages.gz']),
    )
    const conntrackLib = repository!.packages.find((p) => p.name === 'libnetfilter-conntrack3')!
    expect(conntrackLib.reason?.[0]).toBe('conntrack')

    const inspected = await runCli(['inspect', bundle, '--section', 'packages'])
    expect(inspected.code).toBe(0)
    expect(inspected.stdout).toContain(`repo/apt/debian-bookworm  ${names.length} packages`)
    for (const name of names)
      expect(inspected.stdout).toMatch(new RegExp(`^    ${name} \\S+ (amd64|all) `, 'm'))

    const again = join(work, 'again.tar')
    const rebuilt = await runCli(
      ['bundle', join(work, 'nodes.yaml'), '-o', again, '--signing-key', keyHome],
      {
        env: { XDG_CACHE_HOME: join(testCache, '..') },
      },
    )
    expect(rebuilt.code).toBe(0)
    const [a, b] = await Promise.all([readFile(bundle), readFile(again)])
    expect(a.equals(b)).toBe(true)
    await rm(again)
  }, 300_000)

  it('verify rehashes the package files and names a damaged one', async () => {
    const ok = await runCli(['verify', bundle])
    expect(ok.code).toBe(0)
    const damaged = join(work, 'damaged.tar')
    await copyFile(bundle, damaged)
    const reader = await BundleReader.open(damaged)
    const socat = reader.metadata.packages![0]!.packages.find((p) => p.name === 'socat')!
    const member = `repo/apt/debian-bookworm/${socat.path}`
    const at = reader.locate(member)!.offset + 100
    await reader.close()
    const file = await open(damaged, 'r+')
    const byte = Buffer.alloc(1)
    await file.read(byte, 0, 1, at)
    byte[0] = byte[0]! ^ 0xff
    await file.write(byte, 0, 1, at)
    await file.close()
    const bad = await runCli(['verify', damaged, '--json'])
    expect(bad.code).not.toBe(0)
    expect(bad.error?.code).toBe('E_INTEGRITY')
    expect(bad.error?.message).toContain(member)
    await rm(damaged)
  }, 300_000)

  it('node-setup.sh shows the source and key in a dry run, then apt in a fresh minbase node installs from the bundle alone', async () => {
    serving = await serveBundle({
      bundle,
      host: '127.0.0.1',
      port: 0, // any free port: node-setup.sh must still name the one the server got
      advertise: ['127.0.0.1'],
      stateDir: join(work, 'site'),
      sink: silentSink,
    })
    const node = join(work, 'node')
    await unpackMinbase(mirror, node)
    const script = join(work, 'node-setup.sh')
    await run(findTool('curl'), ['-fsS', '--cacert', serving.caFile!, '-o', script, serving.nodeSetupUrl])
    const env = { PATH: process.env.PATH, ASTRAGO_ROOT: node, ASTRAGO_CONTAINERD_VERSION: '2.0.0' }

    const dry = await run('sh', [script, '--dry-run', '--install-packages'], { env })
    expect(dry.stdout).toContain('would write /etc/apt/sources.list.d/astrago-airgap-debian-bookworm.sources')
    expect(dry.stdout).toContain(`    | URIs: ${serving.url}/repo/apt/debian-bookworm`)
    expect(dry.stdout).toContain('    | Signed-By: /etc/apt/keyrings/astrago-airgap-debian-bookworm.asc')
    expect(dry.stdout).toContain('would write /etc/apt/keyrings/astrago-airgap-debian-bookworm.asc')
    expect(dry.stdout).toContain('    | -----BEGIN PGP PUBLIC KEY BLOCK-----')
    expect(dry.stdout).toMatch(
      /would run: chroot \S+ env DEBIAN_FRONTEND=noninteractive apt-get .* install socat conntrack/,
    )
    expect(existsSync(join(node, 'etc/apt/sources.list.d/astrago-airgap-debian-bookworm.sources'))).toBe(
      false,
    )

    const real = await run('sh', [script, '--install-packages'], { env, maxBuffer: 64 << 20 })
    expect(real.stdout).toContain('wrote /etc/apt/apt.conf.d/60astrago-airgap')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format placeholders
    const format = '${Package} ${Status}\n'
    const installed = await inChroot(node, ['dpkg-query', '-W', '-f', format, ...REQUESTS])
    for (const name of REQUESTS) expect(installed.stdout).toContain(`${name} install ok installed`)
    // apt checked our signature: the lists it keeps came from our InRelease.
    const lists = await inChroot(node, ['sh', '-c', 'ls /var/lib/apt/lists'])
    expect(lists.stdout).toMatch(/127\.0\.0\.1.*repo_apt_debian-bookworm_dists_bookworm_InRelease/)

    // Again: nothing changes in the set-up files (apt-get install of installed packages is a no-op).
    const second = await run('sh', [script], { env })
    expect(second.stdout).toMatch(/Nothing to change/)
  }, 600_000)
})

describe('an rpm package repository in a bundle, served to a node', () => {
  let work: string
  let keyHome: string
  let upstream: FileServer | undefined
  let serving: ServingBundle | undefined
  let bundle: string

  beforeAll(async () => {
    for (const tool of ['rpmbuild', 'createrepo_c', 'dnf', 'rpm']) findTool(tool)
    work = await mkdtemp(join(tmpdir(), 'aa-pkgbundle-rpm-'))
    keyHome = join(work, 'key')
    await generateAptSigningKey({
      homeDir: keyHome,
      userId: 'astrago-airgap test bundle key <test@astrago.invalid>',
      created: new Date('2026-01-01T00:00:00Z'),
    })
    const rpmUpstream = await createRpmUpstream(work, join(work, 'upstream'), join(work, 'upstream-gnupg'))
    await stopGpgAgent(join(work, 'upstream-gnupg'))
    upstream = await startFileServer(rpmUpstream.dir)
    await writeFile(
      join(work, 'nodes.yaml'),
      [
        'apiVersion: airgap.astrago.io/v1alpha1',
        'kind: Bundle',
        'metadata: { name: el-nodes, version: 1.0.0 }',
        'packages:',
        '  - name: el-test',
        '    rpm:',
        `      baseurl: ${upstream.url}`,
        '      architectures: [x86_64, noarch]',
        `      keyrings: [${rpmUpstream.keyFile}]`,
        '    packages: [app]',
        '',
      ].join('\n'),
    )
    bundle = join(work, 'el-nodes-1.0.0.tar')
    const built = await runCli([
      'bundle',
      join(work, 'nodes.yaml'),
      '-o',
      bundle,
      '--signing-key',
      keyHome,
      '--json',
    ])
    expect(built.error, built.stderr).toBeUndefined()
    expect(built.result.packages).toBe(EXPECTED.length)
  }, 600_000)

  afterAll(async () => {
    await serving?.stop()
    await upstream?.stop()
    await stopGpgAgent(keyHome)
    await rm(work, { recursive: true, force: true })
  })

  it('lists the closure with inspect, writes the .repo and key with node-setup.sh, and dnf installs from the site alone', async () => {
    const inspected = await runCli(['inspect', bundle, '--section', 'packages'])
    expect(inspected.stdout).toContain(`repo/rpm/el-test  ${EXPECTED.length} packages`)
    expect(inspected.stdout).toMatch(/^ {4}tools-impl 1\.0-1 noarch .*\(app → lib-a → tools-impl\)$/m)

    serving = await serveBundle({
      bundle,
      host: '127.0.0.1',
      port: 0,
      advertise: ['127.0.0.1'],
      stateDir: join(work, 'site'),
      sink: silentSink,
    })
    const node = join(work, 'node')
    await mkdir(join(node, 'etc/yum.repos.d'), { recursive: true })
    const script = join(work, 'node-setup.sh')
    await run(findTool('curl'), ['-fsS', '--cacert', serving.caFile!, '-o', script, serving.nodeSetupUrl])
    const env = { PATH: process.env.PATH, ASTRAGO_ROOT: node, ASTRAGO_CONTAINERD_VERSION: '2.0.0' }
    const dry = await run('sh', [script, '--dry-run'], { env })
    expect(dry.stdout).toContain('would write /etc/yum.repos.d/astrago-airgap-el-test.repo')
    expect(dry.stdout).toContain(`    | baseurl=${serving.url}/repo/rpm/el-test`)
    expect(dry.stdout).toContain('    | repo_gpgcheck=1')
    expect(dry.stdout).toContain('would write /etc/pki/rpm-gpg/RPM-GPG-KEY-astrago-airgap-el-test')
    await run('sh', [script], { env })

    // dnf with only the .repo file node-setup.sh wrote (its key and CA paths seen from the host: --installroot keeps
    // the host's view of file paths), checking our signature on repomd.xml.
    const repo = 'astrago-airgap-el-test'
    const conf = join(work, 'dnf.conf')
    await writeFile(
      conf,
      `[main]\ninstall_weak_deps=False\ncachedir=${join(work, 'dnf-cache')}\nlogdir=${join(work, 'dnf-log')}\n`,
    )
    await run(
      findTool('dnf'),
      [
        `--installroot=${node}`,
        `--config=${conf}`,
        `--setopt=reposdir=${join(node, 'etc/yum.repos.d')}`,
        `--setopt=${repo}.gpgkey=file://${join(node, 'etc/pki/rpm-gpg/RPM-GPG-KEY-astrago-airgap-el-test')}`,
        `--setopt=${repo}.sslcacert=${join(node, 'etc/astrago-airgap/ca.crt')}`,
        '--releasever=1',
        '--assumeyes',
        'install',
        'app',
      ],
      { maxBuffer: 16 << 20, env: { ...process.env, LC_ALL: 'C.UTF-8' } },
    )
    const installed = (
      await run(findTool('rpm'), ['--root', node, '-qa', '--qf', '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n'])
    ).stdout
      .trim()
      .split('\n')
      .filter((n) => !n.startsWith('gpg-pubkey'))
      .sort()
    expect(installed).toEqual(EXPECTED)
  }, 600_000)
})

describe('an rpm source that signs its packages, not its metadata (signed: packages)', () => {
  let work: string
  let upstream: FileServer | undefined
  let keyFile: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'aa-pkgbundle-rpmsig-'))
    const rpmUpstream = await createRpmUpstream(work, join(work, 'upstream'), join(work, 'upstream-gnupg'), {
      signPackages: true,
    })
    await stopGpgAgent(join(work, 'upstream-gnupg'))
    keyFile = rpmUpstream.keyFile
    upstream = await startFileServer(rpmUpstream.dir)
    await generateAptSigningKey({ homeDir: join(work, 'key'), userId: 'bundle key <test@astrago.invalid>' })
    await generateAptSigningKey({
      homeDir: join(work, 'other'),
      userId: 'another key <other@astrago.invalid>',
    })
    await writeFile(
      join(work, 'other.asc'),
      await exportPublicKey(await readSigningKey(join(work, 'other')), true),
    )
  }, 600_000)

  afterAll(async () => {
    await upstream?.stop()
    for (const home of ['key', 'other']) await stopGpgAgent(join(work, home))
    await rm(work, { recursive: true, force: true })
  })

  const bundleWith = async (keyring: string, signed?: string) => {
    const definition = join(work, 'el.yaml')
    await writeFile(
      definition,
      [
        'apiVersion: airgap.astrago.io/v1alpha1',
        'kind: Bundle',
        'metadata: { name: el, version: 1.0.0 }',
        'packages:',
        '  - name: el-signed',
        `    rpm: { baseurl: ${upstream!.url}, keyrings: [${keyring}]${signed ? `, signed: ${signed}` : ''} }`,
        '    packages: [app]',
        '',
      ].join('\n'),
    )
    return runCli([
      'bundle',
      definition,
      '-o',
      join(work, 'el.tar'),
      '--signing-key',
      join(work, 'key'),
      '--json',
    ])
  }

  it('refuses the unsigned metadata by default, accepts it with signed: packages when every package verifies, and names a package signed by another key', async () => {
    const unsigned = await bundleWith(keyFile)
    expect(unsigned.error?.code).toBe('E_INTEGRITY')
    expect(unsigned.error?.message).toMatch(/repomd\.xml is not signed/)
    expect(unsigned.error?.hints.join('\n')).toContain('signed: packages')

    const ok = await bundleWith(keyFile, 'packages')
    expect(ok.error, ok.stderr).toBeUndefined()
    expect(ok.result.packages).toBe(EXPECTED.length)
    expect(
      ok.events.some(
        (e) =>
          e.type === 'task.start' &&
          e.kind === 'bundle.signatures' &&
          (e.data as { folder?: string } | undefined)?.folder === 'repo/rpm/el-signed',
      ),
    ).toBe(true)
    await rm(join(work, 'el.tar'))

    const wrongKey = await bundleWith(join(work, 'other.asc'), 'packages')
    expect(wrongKey.error?.code).toBe('E_INTEGRITY')
    expect(wrongKey.error?.message).toMatch(
      /^The package \S+ 1\.0-1 \(noarch\) of repo\/rpm\/el-signed is not signed by the source's keys/,
    )
    expect(existsSync(join(work, 'el.tar'))).toBe(false)
  }, 300_000)
})
