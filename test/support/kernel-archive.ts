import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { writeAptRepository } from '../../src/packages/apt-repo-writer.js'
import { type AptSigningKey, detachSign, exportPublicKey } from '../../src/packages/apt-signature.js'
import { readPackagesFile } from '../../src/packages/apt-source.js'
import { findTool } from './tools.js'

/**
 * Archives holding kernels, as an Ubuntu and a RHEL archive lay them out, for the `kernels:` tests: real .deb files
 * built with dpkg-deb and indexed by dpkg-scanpackages (then written as a signed apt archive), real .rpm files built
 * with rpmbuild and indexed by createrepo_c (repomd.xml signed). The packages are empty; their names, versions and
 * dependencies are those of the distributions.
 */
const run = promisify(execFile)

/** Ubuntu's generic kernel has modules-extra; a cloud flavour (aws) has none. */
export const UBUNTU_KERNELS = ['5.15.0-91-generic', '6.8.0-1012-aws']

interface Deb {
  name: string
  version: string
  architecture?: string
  depends?: string
}

function ubuntuKernelDebs(kernel: string, extra: boolean): Deb[] {
  const version = kernel.replace(/-[a-z]+$/, '')
  const upstream = `${version}.${version.split('-')[1]}`
  return [
    { name: `linux-headers-${kernel}`, version: upstream, depends: `linux-headers-${version}` },
    { name: `linux-headers-${version}`, version: upstream, architecture: 'all' },
    {
      name: `linux-image-${kernel}`,
      version: upstream,
      depends: `linux-modules-${kernel}`,
    },
    { name: `linux-modules-${kernel}`, version: upstream },
    ...(extra
      ? [{ name: `linux-modules-extra-${kernel}`, version: upstream, depends: `linux-modules-${kernel}` }]
      : []),
  ]
}

export const UBUNTU_DEBS: Deb[] = [
  ...ubuntuKernelDebs(UBUNTU_KERNELS[0]!, true),
  ...ubuntuKernelDebs(UBUNTU_KERNELS[1]!, false),
  { name: 'socat', version: '1.7.4.1-3ubuntu4' },
]

/** An Ubuntu-format archive (suite jammy, main, amd64) in `dir`, signed with `key`; returns its keyring. */
export async function createUbuntuKernelArchive(
  work: string,
  dir: string,
  key: AptSigningKey,
): Promise<string> {
  const pool = join(work, 'pool/main')
  await mkdir(pool, { recursive: true })
  for (const deb of UBUNTU_DEBS) {
    const root = join(work, 'build', deb.name)
    await mkdir(join(root, 'DEBIAN'), { recursive: true })
    await writeFile(
      join(root, 'DEBIAN/control'),
      [
        `Package: ${deb.name}`,
        `Version: ${deb.version}`,
        `Architecture: ${deb.architecture ?? 'amd64'}`,
        'Maintainer: astrago-airgap tests <test@astrago.invalid>',
        'Priority: optional',
        'Section: kernel',
        ...(deb.depends ? [`Depends: ${deb.depends}`] : []),
        `Description: ${deb.name} stand-in`,
        '',
      ].join('\n'),
    )
    await run(findTool('dpkg-deb'), [
      '--root-owner-group',
      '-Zgzip',
      '--build',
      root,
      join(pool, `${deb.name}_${deb.version}_${deb.architecture ?? 'amd64'}.deb`),
    ])
  }
  const { stdout } = await run(findTool('dpkg-scanpackages'), ['--multiversion', 'pool', '/dev/null'], {
    cwd: work,
  })
  await writeFile(join(work, 'Packages'), stdout)
  const controls = await readPackagesFile(join(work, 'Packages'))
  await writeAptRepository({
    dir,
    suite: 'jammy',
    architectures: ['amd64'],
    packages: controls.map((control) => ({ control, file: join(work, control.filename) })),
    key,
    link: false,
  })
  const keyring = join(work, 'ubuntu-test-archive.gpg')
  await writeFile(keyring, await exportPublicKey(key, false))
  return keyring
}

/** RHEL 9's kernel 5.14.0-427.13.1.el9_4 and an older kernel-headers beside it, with gcc. */
export const RHEL_KERNEL = '5.14.0-427.13.1.el9_4.x86_64'

interface Rpm {
  name: string
  version: string
  release: string
  tags?: string[]
}

const RHEL_RPMS: Rpm[] = [
  {
    name: 'kernel-core',
    version: '5.14.0',
    release: '427.13.1.el9_4',
    tags: ['Provides: installonlypkg(kernel)'],
  },
  {
    name: 'kernel-devel',
    version: '5.14.0',
    release: '427.13.1.el9_4',
    tags: ['Provides: installonlypkg(kernel)', 'Requires: perl-interpreter'],
  },
  { name: 'kernel-headers', version: '5.14.0', release: '427.13.1.el9_4' },
  { name: 'kernel-headers', version: '5.14.0', release: '362.8.1.el9_3' },
  { name: 'perl-interpreter', version: '5.32.1', release: '481.el9' },
  { name: 'gcc', version: '11.4.1', release: '3.el9', tags: ['Requires: cpp = 11.4.1-3.el9'] },
  { name: 'cpp', version: '11.4.1', release: '3.el9' },
]

/** An rpm repository in `dir` (createrepo_c, repomd.xml.asc by `key`); returns the armoured public key file. */
export async function createRhelKernelRepository(
  work: string,
  dir: string,
  key: AptSigningKey,
): Promise<string> {
  await mkdir(dir, { recursive: true })
  await mkdir(work, { recursive: true })
  for (const [i, rpm] of RHEL_RPMS.entries()) {
    const spec = join(work, `${rpm.name}-${i}.spec`)
    await writeFile(
      spec,
      [
        '%global debug_package %{nil}',
        `Name: ${rpm.name}`,
        `Version: ${rpm.version}`,
        `Release: ${rpm.release}`,
        `Summary: ${rpm.name} stand-in`,
        'License: MIT',
        'BuildArch: x86_64',
        'AutoReqProv: no',
        ...(rpm.tags ?? []),
        '',
        '%description',
        `${rpm.name}: a stand-in for the RHEL package.`,
        '',
        '%files',
        '',
      ].join('\n'),
    )
    await run(findTool('rpmbuild'), [
      '--quiet',
      '--define',
      `_topdir ${join(work, `rpmbuild-${i}`)}`,
      '--define',
      `_rpmdir ${dir}`,
      '--define',
      '_build_name_fmt %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm',
      '--target',
      'x86_64',
      '-bb',
      spec,
    ])
  }
  await run(findTool('createrepo_c'), ['--quiet', '--no-database', '--general-compress-type=xz', dir])
  const repomd = await readFile(join(dir, 'repodata/repomd.xml'), 'utf8')
  await writeFile(join(dir, 'repodata/repomd.xml.asc'), await detachSign(key, repomd, new Date()))
  const keyFile = join(work, 'rhel-test-key.asc')
  await writeFile(keyFile, await exportPublicKey(key, true))
  return keyFile
}
