import { describe, expect, it } from 'vitest'
import { rpmKernelRequests } from '../../src/packages/kernel-packages.js'
import { resolveRpmClosure } from '../../src/packages/rpm-closure.js'
import { addRpmFileProviders, buildRpmIndex, missingRpmFilePaths } from '../../src/packages/rpm-index.js'
import type { RpmDependency, RpmPackage } from '../../src/packages/rpm-package.js'
import { parseRichDependency } from '../../src/packages/rpm-rich-dependency.js'
import { parseRpmRequirement } from '../../src/packages/rpm-version.js'
import { failure } from '../support/failure.js'

let serial = 0

/** A synthetic package: `pkg('name 1.0-1', { requires: ['lib >= 2'] })`; noarch unless given. */
function pkg(
  nameVersion: string,
  fields: {
    arch?: string
    requires?: string[]
    provides?: string[]
    conflicts?: string[]
    obsoletes?: string[]
    files?: string[]
  } = {},
): RpmPackage {
  const [name, evr] = nameVersion.split(' ') as [string, string]
  const [version, release] = evr.split('-') as [string, string]
  const arch = fields.arch ?? 'noarch'
  serial++
  const deps = (list?: string[]): RpmDependency[] =>
    (list ?? []).map((text) => {
      const { name, flags, evr } = parseRpmRequirement(text)
      return flags && evr ? { name, flags, evr } : { name }
    })
  return {
    name,
    arch,
    epoch: 0,
    version,
    release: release ?? '1',
    checksum: { type: 'sha256', value: serial.toString(16).padStart(64, '0') },
    size: 100,
    location: `${name}-${evr}.${arch}.rpm`,
    requires: deps(fields.requires),
    provides: deps(fields.provides),
    conflicts: deps(fields.conflicts),
    obsoletes: deps(fields.obsoletes),
    files: fields.files ?? [],
    raw: '',
  }
}

function resolve(
  packages: RpmPackage[],
  requests: string[],
  baseline?: string[],
  architectures = ['x86_64'],
) {
  const index = buildRpmIndex(packages, { architectures })
  const result = resolveRpmClosure({ index, requests, ...(baseline ? { baseline } : {}) })
  return { ...result, names: result.packages.map((p) => `${p.name}-${p.version}-${p.release}.${p.arch}`) }
}

describe('rpm dependency closure', () => {
  it('follows Requires transitively, newest version per name.arch, and says why each package is there', () => {
    const { names, reasons } = resolve(
      [
        pkg('app 1.0-1', { requires: ['lib-a >= 2', 'rpmlib(CompressedFileNames) <= 3.0.4-1'] }),
        pkg('lib-a 1.0-1', { requires: ['libb'] }),
        pkg('lib-a 2.0-1', { requires: ['libb'] }),
        pkg('lib-a 2.0-2', { requires: ['libb'] }),
        pkg('libb 1.0-1'),
        pkg('unrelated 1.0-1'),
      ],
      ['app'],
    )
    expect(names).toEqual(['app-1.0-1.noarch', 'lib-a-2.0-2.noarch', 'libb-1.0-1.noarch'])
    expect(reasons.get('libb.noarch')).toEqual(['app', 'lib-a', 'libb'])
  })

  it('takes an older version when a versioned requirement excludes the newest, and honours versioned requests', () => {
    const packages = [
      pkg('app 1.0-1', { requires: ['lib-a < 2'] }),
      pkg('lib-a 1.5-1'),
      pkg('lib-a 1.0-1'),
      pkg('lib-a 2.0-1'),
    ]
    expect(resolve(packages, ['app']).names).toEqual(['app-1.0-1.noarch', 'lib-a-1.5-1.noarch'])
    expect(resolve(packages, ['lib-a = 1.0']).names).toEqual(['lib-a-1.0-1.noarch'])
    expect(resolve(packages, ['lib-a']).names).toEqual(['lib-a-2.0-1.noarch'])
    expect(failure(() => resolve(packages, ['lib-a > 3'])).message).toBe(
      'cannot install lib-a > 3: no package provides lib-a > 3',
    )
  })

  it('satisfies virtual names through Provides, with versions, preferring a provider already chosen', () => {
    const packages = [
      pkg('app 1.0-1', { requires: ['shell-tools >= 2', 'zz-tools'] }),
      pkg('busybox 1.0-1', { provides: ['shell-tools = 1.0'] }),
      pkg('coreutils 9.0-1', { provides: ['shell-tools = 9.0'] }),
      pkg('zz-tools 1.0-1', { provides: ['shell-tools = 3.0'] }),
    ]
    // busybox's shell-tools is too old; zz-tools, needed anyway, provides it: no coreutils.
    expect(resolve(packages, ['app']).names).toEqual(['app-1.0-1.noarch', 'zz-tools-1.0-1.noarch'])
    // Two candidates of different names and nothing else deciding: the first by name.
    const { names } = resolve(
      [
        pkg('app 1.0-1', { requires: ['mta'] }),
        pkg('sendmail 1-1', { provides: ['mta'] }),
        pkg('exim 1-1', { provides: ['mta'] }),
      ],
      ['app'],
    )
    expect(names).toEqual(['app-1.0-1.noarch', 'exim-1-1.noarch'])
    // A package named like the dependency wins over other providers.
    expect(
      resolve(
        [pkg('app 1-1', { requires: ['mta'] }), pkg('mta 1-1'), pkg('exim 1-1', { provides: ['mta'] })],
        ['app'],
      ).names,
    ).toEqual(['app-1-1.noarch', 'mta-1-1.noarch'])
  })

  it('resolves file requires from primary files, file provides, and filelists for paths primary lacks', () => {
    const packages = [
      pkg('app 1.0-1', { requires: ['/usr/bin/helper', '/usr/share/data/marker', '/opt/provided'] }),
      pkg('helper 1.0-1', { files: ['/usr/bin/helper'] }),
      pkg('data 1.0-1'),
      pkg('prov 1.0-1', { provides: ['/opt/provided'] }),
    ]
    const index = buildRpmIndex(packages, { architectures: ['x86_64'] })
    expect([...missingRpmFilePaths(index)]).toEqual(['/usr/share/data/marker'])
    const missing = failure(() => resolveRpmClosure({ index, requests: ['app'] }))
    expect(missing.message).toBe('cannot install app: app: nothing provides /usr/share/data/marker')
    expect(missing.data?.dependency).toBe('/usr/share/data/marker')
    addRpmFileProviders(index, new Map([['/usr/share/data/marker', [packages[2]!.checksum.value]]]))
    const { packages: chosen } = resolveRpmClosure({ index, requests: ['app'] })
    expect(chosen.map((p) => p.name)).toEqual(['app', 'data', 'helper', 'prov'])
    // A file path as a request, as dnf accepts it.
    expect(resolve(packages, ['/usr/bin/helper']).names).toEqual(['helper-1.0-1.noarch'])
  })

  it('names the whole chain when a dependency is missing', () => {
    const error = failure(() =>
      resolve(
        [
          pkg('a 1-1', { requires: ['b'] }),
          pkg('b 1-1', { requires: ['c >= 2'] }),
          pkg('c 1-1', { requires: ['libfoo.so.1()(64bit)'] }),
          pkg('c 2-1', { requires: ['libfoo.so.1()(64bit)'] }),
        ],
        ['a'],
      ),
    )
    expect(error.code).toBe('E_INPUT')
    expect(error.message).toBe('cannot install a: a → b → c: nothing provides libfoo.so.1()(64bit)')
    expect(error.data).toMatchObject({
      package: 'a',
      chain: ['a', 'b', 'c'],
      dependency: 'libfoo.so.1()(64bit)',
    })
    expect(
      failure(() => resolve([pkg('a 1-1', { requires: ['b >= 2'] }), pkg('b 1-1')], ['a'])).message,
    ).toBe('cannot install a: a: nothing provides b >= 2')
    expect(failure(() => resolve([], ['nothing'])).message).toMatch(
      /^cannot install nothing: no package provides/,
    )
  })

  it('prefers the target architecture, then noarch; other architectures only when asked (multilib)', () => {
    const packages = [
      pkg('app 1-1', { arch: 'x86_64', requires: ['libz.so.1()(64bit)', 'tool'] }),
      pkg('zlib 1-1', { arch: 'x86_64', provides: ['libz.so.1()(64bit)'] }),
      pkg('zlib 1-1', { arch: 'i686', provides: ['libz.so.1'] }),
      pkg('tool 1-1', { arch: 'x86_64' }),
      pkg('tool 1-1', { arch: 'noarch' }),
      pkg('tool 2-1', { arch: 'i686' }),
      pkg('app32 1-1', { arch: 'i686', requires: ['libz.so.1'] }),
      pkg('src 1-1', { arch: 'src' }),
      pkg('arm 1-1', { arch: 'aarch64' }),
    ]
    expect(resolve(packages, ['app']).names).toEqual(['app-1-1.x86_64', 'tool-1-1.x86_64', 'zlib-1-1.x86_64'])
    expect(failure(() => resolve(packages, ['app32'])).message).toMatch(/no package provides app32/)
    expect(failure(() => resolve(packages, ['arm'])).message).toMatch(/no package provides arm/)
    expect(resolve(packages, ['app32'], [], ['x86_64', 'i686']).names).toEqual([
      'app32-1-1.i686',
      'zlib-1-1.i686',
    ])
    expect(resolve(packages, ['tool.i686'], [], ['x86_64', 'i686']).names).toEqual(['tool-2-1.i686'])
    expect(resolve(packages, ['tool.noarch']).names).toEqual(['tool-1-1.noarch'])
  })

  it('lets Conflicts and Obsoletes decide between candidates', () => {
    const { names } = resolve(
      [
        pkg('app 1-1', { requires: ['data', 'shell-tools', 'mailer'] }),
        pkg('data 1-1'),
        pkg('alt-tools 1-1', { provides: ['shell-tools'], conflicts: ['data'] }),
        pkg('tools-impl 1-1', { provides: ['shell-tools'] }),
        pkg('a-mailer 1-1', { provides: ['mailer'] }),
        pkg('b-mailer 1-1', { provides: ['mailer'], obsoletes: ['a-mailer < 2'] }),
        pkg('z 1-1', { requires: ['b-mailer'] }),
      ],
      ['app', 'z'],
    )
    // alt-tools conflicts with data; b-mailer (needed by z) obsoletes a-mailer and provides mailer itself.
    expect(names).toEqual([
      'app-1-1.noarch',
      'b-mailer-1-1.noarch',
      'data-1-1.noarch',
      'tools-impl-1-1.noarch',
      'z-1-1.noarch',
    ])
    const blocked = failure(() =>
      resolve(
        [
          pkg('app 1-1', { requires: ['x'] }),
          pkg('x 1-1', { conflicts: ['base-thing'] }),
          pkg('base-thing 1-1'),
        ],
        ['app'],
        ['base-thing'],
      ),
    )
    expect(blocked.message).toBe(
      'cannot install app: app: nothing installable provides x (x-1-1.noarch conflicts with base-thing provided by base-thing-1-1.noarch)',
    )
  })

  it('treats the baseline as installed: names, provides, and the files of baseline packages', () => {
    const packages = [
      pkg('app 1-1', { requires: ['glibc >= 99', '/bin/sh', 'libcrypto.so.3()(64bit)', 'curl'] }),
      pkg('bash 5-1', { files: ['/bin/sh', '/usr/bin/bash'] }),
      pkg('glibc 2.34-1'),
      pkg('curl 8-1'),
    ]
    const { names, baseline } = resolve(
      packages,
      ['app'],
      ['bash', 'glibc', 'libcrypto.so.3()(64bit)', 'curl'],
    )
    expect(names).toEqual(['app-1-1.noarch'])
    expect(baseline.map((p) => p.name)).toEqual(['bash', 'glibc', 'curl'])
    // Requested explicitly, a baseline package is fetched.
    expect(resolve(packages, ['curl'], ['curl']).names).toEqual(['curl-8-1.noarch'])
  })

  it('resolves rich dependencies: or, and, if/else, unless, with; without is refused', () => {
    const base = [
      pkg('extra-a 1-1'),
      pkg('extra-b 1-1'),
      pkg('docs 1-1'),
      pkg('gui 1-1'),
      pkg('gui-plugin 1-1'),
      pkg('py 3-1', { provides: ['python(abi) = 3.9'] }),
      pkg('py 4-1', { provides: ['python(abi) = 3.12'] }),
    ]
    const with1 = (requires: string[], requests = ['app']) =>
      resolve([...base, pkg('app 1-1', { requires })], requests).names.map((n) =>
        n.replace(/-\d+-1\.noarch$/, ''),
      )
    expect(with1(['(extra-a or extra-b)'])).toEqual(['app', 'extra-a'])
    expect(with1(['(missing or extra-b)'])).toEqual(['app', 'extra-b'])
    expect(with1(['(extra-b or extra-a)', 'extra-b'])).toEqual(['app', 'extra-b'])
    // Neither installed: chosen as libsolv chooses between providers (by name), not by position.
    expect(with1(['(extra-b or extra-a)'])).toEqual(['app', 'extra-a'])
    expect(with1(['((extra-b and docs) or extra-a)'])).toEqual(['app', 'docs', 'extra-b'])
    expect(with1(['(extra-a and docs)'])).toEqual(['app', 'docs', 'extra-a'])
    expect(with1(['(gui-plugin if gui)'])).toEqual(['app'])
    expect(with1(['(gui-plugin if gui)'], ['app', 'gui'])).toEqual(['app', 'gui-plugin', 'gui'])
    expect(with1(['(gui-plugin if gui else docs)'])).toEqual(['app', 'docs'])
    expect(with1(['(docs unless gui)'])).toEqual(['app', 'docs'])
    expect(with1(['(docs unless gui)'], ['app', 'gui'])).toEqual(['app', 'gui'])
    expect(with1(['(py with python(abi) = 3.9)'])).toEqual(['app', 'py'])
    expect(
      resolve([...base, pkg('app 1-1', { requires: ['(py with python(abi) = 3.9)'] })], ['app']).names,
    ).toContain('py-3-1.noarch')
    expect(failure(() => with1(['(missing or absent >= 2)'])).message).toBe(
      'cannot install app: app: nothing provides any of (missing or absent >= 2)',
    )
    expect(failure(() => with1(['(py without python(abi) = 3.9)'])).message).toMatch(
      /"without" are not supported/,
    )
    expect(parseRichDependency('(a >= 1 or (b if c else d))')).toEqual({
      op: 'or',
      args: [
        { op: 'dep', dep: { name: 'a', flags: 'GE', evr: { epoch: 0, version: '1', release: '' } } },
        {
          op: 'if',
          consequence: { op: 'dep', dep: { name: 'b' } },
          cond: { op: 'dep', dep: { name: 'c' } },
          otherwise: { op: 'dep', dep: { name: 'd' } },
        },
      ],
    })
    expect(parseRichDependency('(python(abi) = 3.9 or libc.so.6()(64bit))')).toEqual({
      op: 'or',
      args: [
        {
          op: 'dep',
          dep: { name: 'python(abi)', flags: 'EQ', evr: { epoch: 0, version: '3.9', release: '' } },
        },
        { op: 'dep', dep: { name: 'libc.so.6()(64bit)' } },
      ],
    })
    expect(() => parseRichDependency('(a or')).toThrow(/cannot parse the rich dependency/)
  })

  it('installs a name.arch once: a second version is not taken', () => {
    const error = failure(() =>
      resolve(
        [
          pkg('app 1-1', { requires: ['lib = 1', 'other'] }),
          pkg('other 1-1', { requires: ['lib = 2'] }),
          pkg('lib 1-1'),
          pkg('lib 2-1'),
        ],
        ['app'],
      ),
    )
    expect(error.message).toBe(
      'cannot install app: app → other: nothing installable provides lib = 2 (lib-1-1.noarch is already chosen)',
    )
  })

  it('installs several versions of installonly packages (kernel-devel for two kernels)', () => {
    const devel = (v: string) =>
      pkg(`kernel-devel ${v}`, { arch: 'x86_64', provides: ['installonlypkg(kernel)'], requires: ['perl'] })
    const { names, reasons } = resolve(
      [devel('5.14.0-427.el9'), devel('5.14.0-503.el9'), devel('5.14.0-570.el9'), pkg('perl 5-1')],
      ['kernel-devel = 5.14.0-427.el9', 'kernel-devel = 5.14.0-503.el9'],
    )
    expect(names).toEqual([
      'kernel-devel-5.14.0-427.el9.x86_64',
      'kernel-devel-5.14.0-503.el9.x86_64',
      'perl-5-1.noarch',
    ])
    expect(reasons.get('kernel-devel.x86_64-5.14.0-503.el9')).toEqual(['kernel-devel'])
  })

  it('adds kernel-headers, kernel-devel and kernel-core of each kernel and gcc once; a missing kernel is refused', () => {
    const v = '5.14.0-427.13.1.el9_4'
    const packages = [
      pkg(`kernel-headers ${v}`, { arch: 'x86_64' }),
      pkg(`kernel-devel ${v}`, { arch: 'x86_64', provides: ['installonlypkg(kernel)'] }),
      pkg(`kernel-core ${v}`, { arch: 'x86_64', provides: ['installonlypkg(kernel)'] }),
      pkg('gcc 11.4.1-3.el9', { arch: 'x86_64' }),
    ]
    const index = buildRpmIndex(packages, { architectures: ['x86_64'] })
    const requests = rpmKernelRequests([`${v}.x86_64`], index, 'http://cdn.example/rhel9')
    expect(requests).toEqual([`kernel-headers = ${v}`, `kernel-devel = ${v}`, `kernel-core = ${v}`, 'gcc'])
    expect(
      resolveRpmClosure({ index, requests })
        .packages.map((p) => p.name)
        .sort(),
    ).toEqual(['gcc', 'kernel-core', 'kernel-devel', 'kernel-headers'])
    expect(rpmKernelRequests([], index, 'http://cdn.example/rhel9')).toEqual([])
    const missing = failure(() =>
      rpmKernelRequests(['5.14.0-503.el9.x86_64'], index, 'http://cdn.example/rhel9'),
    )
    expect(missing.code).toBe('E_INPUT')
    expect(missing.message).toContain('5.14.0-503.el9.x86_64')
    expect(missing.message).toContain('http://cdn.example/rhel9')
  })
})
