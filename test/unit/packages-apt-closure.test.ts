import { describe, expect, it } from 'vitest'
import { type AptBaseline, buildAptIndex, resolveAptClosure } from '../../src/packages/apt-closure.js'
import type { AptPackage } from '../../src/packages/apt-index.js'
import { aptKernelRequests } from '../../src/packages/kernel-packages.js'
import { failure } from '../support/failure.js'

/** A synthetic package: `pkg('name 1.0', { depends: '…' })`; architecture amd64 unless given. */
function pkg(nameVersion: string, fields: Partial<AptPackage> = {}): AptPackage {
  const [name, version] = nameVersion.split(' ') as [string, string]
  const architecture = fields.architecture ?? 'amd64'
  return {
    package: name,
    version,
    architecture,
    multiArch: 'no',
    priority: 'optional',
    essential: false,
    depends: undefined,
    preDepends: undefined,
    provides: undefined,
    conflicts: undefined,
    breaks: undefined,
    filename: `pool/main/${name[0]}/${name}/${name}_${version}_${architecture}.deb`,
    size: 100,
    sha256: 'a'.repeat(64),
    extra: '',
    ...fields,
  }
}

function resolve(
  packages: AptPackage[],
  requests: string[],
  baseline: AptBaseline = {},
  foreign: string[] = [],
) {
  const index = buildAptIndex(packages, { architecture: 'amd64', foreignArchitectures: foreign })
  const result = resolveAptClosure({ index, requests, baseline })
  return { ...result, names: result.packages.map((p) => `${p.package}=${p.version}`) }
}

describe('apt dependency closure', () => {
  it('follows Depends and Pre-Depends transitively and keeps only the candidate (highest) version', () => {
    const { names, reasons } = resolve(
      [
        pkg('app 1.0', { depends: 'liba (>= 1.0)', preDepends: 'helper' }),
        pkg('liba 1.0', { depends: 'libb' }),
        pkg('liba 1.2', { depends: 'libb' }),
        pkg('libb 2.0'),
        pkg('helper 1'),
        pkg('unrelated 1'),
      ],
      ['app'],
    )
    expect(names).toEqual(['app=1.0', 'helper=1', 'liba=1.2', 'libb=2.0'])
    expect(reasons.get('libb:amd64')).toEqual(['app', 'liba', 'libb'])
  })

  it('leaves the baseline alone: its packages are not fetched and their dependencies not followed', () => {
    const { names, baseline } = resolve(
      [
        pkg('base 1', { priority: 'required', depends: 'baselib' }),
        pkg('baselib 1'),
        pkg('app 1', { depends: 'base, baselib' }),
      ],
      ['app'],
      { priorities: ['required'] },
    )
    expect(names).toEqual(['app=1'])
    expect(baseline.map((p) => p.package)).toEqual(['base', 'baselib'])
  })

  it('upgrades a baseline package when a versioned dependency needs the newer candidate', () => {
    const { names } = resolve([pkg('libc 2.36'), pkg('app 1', { depends: 'libc (>= 2.36)' })], ['app'], {
      installed: [{ package: 'libc', version: '2.31' }],
    })
    expect(names).toEqual(['app=1', 'libc=2.36'])
  })

  it('knows what installed packages absent from the index provide, when told', () => {
    const packages = [pkg('rpcbind 1', { depends: 'lsb-base (>= 4.1)' })]
    const installed = [{ package: 'sysvinit-utils', version: '3.06-4', provides: 'lsb-base (= 11.1.0)' }]
    expect(resolve(packages, ['rpcbind'], { installed }).names).toEqual(['rpcbind=1'])
    expect(
      failure(() => resolve(packages, ['rpcbind'], { installed: [{ package: 'sysvinit-utils' }] })).message,
    ).toMatch(/rpcbind → lsb-base \(>= 4\.1\)/)
  })

  it('takes the first satisfiable alternative, unless another one is already installed or chosen', () => {
    const index = [
      pkg('app 1', { depends: 'first | second' }),
      pkg('other 1', { depends: 'second, first | second' }),
      pkg('first 1'),
      pkg('second 1'),
    ]
    expect(resolve(index, ['app']).names).toEqual(['app=1', 'first=1'])
    expect(resolve(index, ['app'], { installed: [{ package: 'second' }] }).names).toEqual(['app=1'])
    expect(resolve(index, ['other']).names).toEqual(['other=1', 'second=1'])
    // An alternative whose version does not match is skipped.
    expect(
      resolve([pkg('app 1', { depends: 'first (>= 2) | second' }), pkg('first 1'), pkg('second 1')], ['app'])
        .names,
    ).toEqual(['app=1', 'second=1'])
  })

  it('satisfies virtual packages through Provides, versioned ones only through versioned Provides', () => {
    const index = [
      pkg('app 1', { depends: 'mail-transport-agent' }),
      pkg('vapp 1', { depends: 'libfoo-abi (>= 2)' }),
      pkg('exim 4', { provides: 'mail-transport-agent', priority: 'standard' }),
      pkg('postfix 3', { provides: 'mail-transport-agent', priority: 'optional' }),
      pkg('foo-old 1', { provides: 'libfoo-abi' }),
      pkg('foo-new 1', { provides: 'libfoo-abi (= 2)' }),
    ]
    expect(resolve(index, ['app']).names).toEqual(['app=1', 'exim=4'])
    expect(resolve(index, ['app'], { installed: [{ package: 'postfix' }] }).names).toEqual(['app=1'])
    expect(resolve(index, ['vapp']).names).toEqual(['foo-new=1', 'vapp=1'])
    const ambiguous = failure(() => resolve(index, ['mail-transport-agent']))
    expect(ambiguous.code).toBe('E_INPUT')
    expect(ambiguous.message).toMatch(/exim, postfix/)
  })

  it('applies Multi-Arch: :any needs Multi-Arch: allowed; foreign satisfies other architectures; all is native', () => {
    const packages = [
      pkg('script 1', { architecture: 'all', depends: 'python3:any' }),
      pkg('python3 3', { multiArch: 'allowed' }),
      pkg('tool 1', { depends: 'perl:any' }),
      pkg('perl 5'),
      pkg('libx 1', { architecture: 'i386', depends: 'helper' }),
      pkg('helper 1', { multiArch: 'foreign' }),
      pkg('liby 1', { architecture: 'i386', depends: 'libz' }),
      pkg('libz 1'),
    ]
    expect(resolve(packages, ['script']).names).toEqual(['python3=3', 'script=1'])
    const notAllowed = failure(() => resolve(packages, ['tool']))
    expect(notAllowed.message).toMatch(/perl:any/)
    expect(
      resolve(packages, ['libx:i386'], {}, ['i386']).packages.map((p) => `${p.package}:${p.architecture}`),
    ).toEqual(['helper:amd64', 'libx:i386'])
    // libz is not Multi-Arch: foreign, and there is no libz:i386.
    expect(failure(() => resolve(packages, ['liby:i386'], {}, ['i386'])).message).toMatch(/libz/)
  })

  it('lets Conflicts and Breaks decide between alternatives', () => {
    const packages = [
      pkg('app 1', { depends: 'first | second' }),
      pkg('first 1', { conflicts: 'oldthing' }),
      pkg('second 1'),
      pkg('app2 1', { depends: 'newlib' }),
      pkg('newlib 1', { breaks: 'oldthing (<< 2)' }),
    ]
    expect(resolve(packages, ['app'], { installed: [{ package: 'oldthing', version: '1' }] }).names).toEqual([
      'app=1',
      'second=1',
    ])
    const broken = failure(() =>
      resolve(packages, ['app2'], { installed: [{ package: 'oldthing', version: '1' }] }),
    )
    expect(broken.message).toMatch(/newlib 1 conflicts with oldthing|newlib conflicts with oldthing/)
    expect(resolve(packages, ['app2'], { installed: [{ package: 'oldthing', version: '2' }] }).names).toEqual(
      ['app2=1', 'newlib=1'],
    )
  })

  it('ignores a package conflicting with what it provides itself', () => {
    const packages = [pkg('mta 1', { provides: 'mail-transport-agent', conflicts: 'mail-transport-agent' })]
    expect(resolve(packages, ['mta']).names).toEqual(['mta=1'])
  })

  it('names the package and the dependency chain when something is missing', () => {
    const packages = [
      pkg('nfs-common 1', { depends: 'rpcbind' }),
      pkg('rpcbind 1', { depends: 'libtirpc3 (>= 1.3)' }),
      pkg('libtirpc3 1.2'),
    ]
    const error = failure(() => resolve(packages, ['nfs-common']))
    expect(error.code).toBe('E_INPUT')
    expect(error.message).toMatch(/nfs-common → rpcbind → libtirpc3 \(>= 1\.3\)/)
    expect(error.message).toMatch(/candidate is 1\.2/)
    expect(error.data).toMatchObject({ package: 'nfs-common', chain: ['nfs-common', 'rpcbind'] })
    const unknown = failure(() => resolve(packages, ['no-such-package']))
    expect(unknown).toMatchObject({ code: 'E_INPUT', data: { package: 'no-such-package' } })
  })

  it('honours version requests', () => {
    const packages = [pkg('tool 1.0'), pkg('tool 2.0')]
    expect(resolve(packages, ['tool']).names).toEqual(['tool=2.0'])
    expect(resolve(packages, ['tool (>= 2)']).names).toEqual(['tool=2.0'])
    // An explicit version may be any version of the index, as `apt-get install tool=1.0`.
    expect(resolve(packages, ['tool=1.0']).names).toEqual(['tool=1.0'])
    expect(failure(() => resolve(packages, ['tool=3.0'])).code).toBe('E_INPUT')
    // Dependencies only see the candidate, as apt with equal pins.
    expect(
      failure(() => resolve([...packages, pkg('app 1', { depends: 'tool (<< 2)' })], ['app'])).code,
    ).toBe('E_INPUT')
  })

  it("adds each kernel's headers, image, modules and modules-extra (where present), and refuses a missing kernel", () => {
    const k = '5.15.0-91-generic'
    const packages = [
      pkg(`linux-headers-${k} 5.15.0-91.101`),
      pkg(`linux-image-${k} 5.15.0-91.101`, { depends: `linux-modules-${k}` }),
      pkg(`linux-modules-${k} 5.15.0-91.101`),
      pkg(`linux-modules-extra-${k} 5.15.0-91.101`),
      // Debian: the image carries its modules, there is no linux-modules package.
      pkg('linux-headers-6.1.0-18-amd64 6.1.76-1'),
      pkg('linux-image-6.1.0-18-amd64 6.1.76-1'),
      // An Ubuntu image whose modules package is missing from the archive.
      pkg('linux-headers-6.8.0-31-generic 6.8.0-31.31'),
      pkg('linux-image-6.8.0-31-generic 6.8.0-31.31', { depends: 'linux-modules-6.8.0-31-generic' }),
    ]
    const index = buildAptIndex(packages, { architecture: 'amd64' })
    const where = { mirror: 'http://archive.example/ubuntu', suites: ['jammy', 'jammy-updates'] }
    expect(aptKernelRequests([k, '6.1.0-18-amd64'], index, where)).toEqual([
      `linux-headers-${k}`,
      `linux-image-${k}`,
      `linux-modules-${k}`,
      `linux-modules-extra-${k}`,
      'linux-headers-6.1.0-18-amd64',
      'linux-image-6.1.0-18-amd64',
    ])
    const missing = failure(() => aptKernelRequests(['5.15.0-200-generic'], index, where))
    expect(missing.code).toBe('E_INPUT')
    expect(missing.message).toContain('5.15.0-200-generic')
    expect(missing.message).toContain('jammy, jammy-updates')
    expect(failure(() => aptKernelRequests(['6.8.0-31-generic'], index, where)).data).toMatchObject({
      missing: ['linux-modules-6.8.0-31-generic'],
    })
  })
})
