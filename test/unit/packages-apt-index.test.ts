import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import {
  type AptPackage,
  formatPackageStanza,
  parseDeb822,
  parseRelations,
  parseRelease,
  readPackagesIndex,
} from '../../src/packages/apt-index.js'
import { decompress } from '../../src/packages/decompress.js'

const RELEASE = `Origin: Debian
Label: Debian
Suite: stable
Version: 12.11
Codename: bookworm
Date: Sat, 17 May 2025 09:17:18 UTC
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: all amd64 arm64
Components: main contrib non-free-firmware non-free
Description: Debian 12.11 Released 17 May 2025
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 3957f28db16e3f28c7b34ae84f1c929c567de6970f3f1b95dac9b498dd80fe63   738242 contrib/Contents-all
 f4a19ba7eeee7a8a5d3bfe1fc2ff4c2aed1a4a50e78e3bd1c1b9bb1c0e9e0d2a  9498452 main/binary-amd64/Packages.gz
`

const PACKAGES = `Package: nfs-common
Source: nfs-utils
Version: 1:2.6.2-4+deb12u1
Installed-Size: 1005
Maintainer: Debian kernel team <debian-kernel@lists.debian.org>
Architecture: amd64
Replaces: mount (<< 2.13~), nfs-kernel-server (<< 1:1.0.7-5), nfs-server
Provides: nfs-client
Depends: libc6 (>= 2.34), libcap2 (>= 1:2.10), rpcbind, adduser, ucf, lsb-base (>= 1.3-9ubuntu3) | sysvinit-utils (>= 3.05-4~), keyutils
Pre-Depends: init-system-helpers (>= 1.54~)
Recommends: python3
Conflicts: nfs-client
Breaks: nfs-kernel-server (<< 1:1.2.8-7)
Description: NFS support files common to client and server
 Use this package on any machine that uses NFS, either as client or
 server.
Multi-Arch: foreign
Homepage: http://nfs.sourceforge.net/
Description-md5: 83d3c9bf9b6e3f7aa8a4d7d8a8b0d8cc
Section: net
Priority: optional
Filename: pool/main/n/nfs-utils/nfs-common_2.6.2-4+deb12u1_amd64.deb
Size: 255516
SHA256: 4a5c38d5d0d47b0d5a2cfba2b1a2ab7a1c1f5b8d1d7f0a3d0e0f0b2d6a1c3e5f

Package: python3-minimal
Version: 3.11.2-1+b1
Architecture: amd64
Multi-Arch: allowed
Priority: optional
Depends: python3.11-minimal (>= 3.11.2-1~), dpkg (>= 1.13.20)
Filename: pool/main/p/python3-defaults/python3-minimal_3.11.2-1+b1_amd64.deb
Size: 26752
SHA256: aaaa38d5d0d47b0d5a2cfba2b1a2ab7a1c1f5b8d1d7f0a3d0e0f0b2d6a1c3e5f
`

async function readAll(stream: Readable): Promise<AptPackage[]> {
  const packages: AptPackage[] = []
  await readPackagesIndex(stream, (pkg) => packages.push(pkg))
  return packages
}

describe('deb822 and Release files', () => {
  it('parses fields, continuation lines and the SHA256 list', () => {
    const release = parseRelease(RELEASE)
    expect(release.codename).toBe('bookworm')
    expect(release.suite).toBe('stable')
    expect(release.architectures).toEqual(['all', 'amd64', 'arm64'])
    expect(release.components).toContain('non-free-firmware')
    expect(release.acquireByHash).toBe(true)
    expect(release.date?.toISOString()).toBe('2025-05-17T09:17:18.000Z')
    expect(release.sha256.get('main/binary-amd64/Packages.gz')).toEqual({
      path: 'main/binary-amd64/Packages.gz',
      size: 9498452,
      sha256: 'f4a19ba7eeee7a8a5d3bfe1fc2ff4c2aed1a4a50e78e3bd1c1b9bb1c0e9e0d2a',
    })
    expect(release.sha256.size).toBe(2)
  })

  it('separates paragraphs at blank lines', () => {
    const paragraphs = parseDeb822('A: 1\nB: two\n words\n\n\nA: 3\n')
    expect(paragraphs).toHaveLength(2)
    expect(paragraphs[0]!.get('B')).toBe('two\nwords')
  })
})

describe('package relations', () => {
  it('parses alternatives, operators, architecture qualifiers, and drops restrictions', () => {
    expect(
      parseRelations('libc6 (>= 2.34), lsb-base (>= 1.3-9ubuntu3) | sysvinit-utils (>= 3.05-4~), perl:any'),
    ).toEqual([
      [{ name: 'libc6', operator: '>=', version: '2.34' }],
      [
        { name: 'lsb-base', operator: '>=', version: '1.3-9ubuntu3' },
        { name: 'sysvinit-utils', operator: '>=', version: '3.05-4~' },
      ],
      [{ name: 'perl', archQualifier: 'any' }],
    ])
    expect(parseRelations('foo [amd64] <!nocheck>, bar (< 2)')).toEqual([
      [{ name: 'foo' }],
      [{ name: 'bar', operator: '<=', version: '2' }],
    ])
    expect(parseRelations(undefined)).toEqual([])
  })
})

describe('Packages index streaming', () => {
  it('reads stanzas whatever the chunk boundaries, keeping resolution fields and republished extras', async () => {
    const bytes = Buffer.from(PACKAGES)
    const chunks: Buffer[] = []
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.subarray(i, i + 7))
    const packages = await readAll(Readable.from(chunks))
    expect(packages).toHaveLength(2)
    const nfs = packages[0]!
    expect(nfs).toMatchObject({
      package: 'nfs-common',
      version: '1:2.6.2-4+deb12u1',
      architecture: 'amd64',
      multiArch: 'foreign',
      priority: 'optional',
      provides: 'nfs-client',
      conflicts: 'nfs-client',
      breaks: 'nfs-kernel-server (<< 1:1.2.8-7)',
      preDepends: 'init-system-helpers (>= 1.54~)',
      size: 255516,
    })
    expect(nfs.extra).toContain('Section: net')
    expect(nfs.extra).toContain('Description: NFS support files common to client and server')
    expect(nfs.extra).not.toContain('either as client')
    expect(packages[1]!.multiArch).toBe('allowed')
  })

  it('decompresses .gz indices and round-trips through the stanza formatter', async () => {
    const packages = await readAll(decompress('Packages.gz', Readable.from([gzipSync(PACKAGES)])))
    const again = await readAll(Readable.from([packages.map(formatPackageStanza).join('\n\n')]))
    expect(again).toEqual(packages)
  })

  it('decompresses .xz indices with the xz binary', async () => {
    const { execFileSync } = await import('node:child_process')
    const xz = execFileSync('xz', ['-c'], { input: PACKAGES })
    const packages = await readAll(decompress('Packages.xz', Readable.from([xz])))
    expect(packages.map((p) => p.package)).toEqual(['nfs-common', 'python3-minimal'])
  })

  it('refuses stanzas without a SHA256', async () => {
    await expect(
      readAll(Readable.from(['Package: a\nVersion: 1\nArchitecture: all\nFilename: pool/a.deb\nSize: 1\n'])),
    ).rejects.toMatchObject({
      code: 'E_INPUT',
    })
  })
})
