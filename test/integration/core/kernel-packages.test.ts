import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AirgapError, isAirgapError } from '../../../src/errors.js'
import { HttpClient } from '../../../src/net/http.js'
import {
  type AptSigningKey,
  generateAptSigningKey,
  stopGpgAgent,
} from '../../../src/packages/apt-signature.js'
import { planPackageRepository } from '../../../src/packages/plan-repository.js'
import type { PackageRepositorySpec } from '../../../src/spec/types.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import {
  createRhelKernelRepository,
  createUbuntuKernelArchive,
  RHEL_KERNEL,
  UBUNTU_KERNELS,
} from '../../support/kernel-archive.js'

/**
 * `kernels:` against archives built here from real packages (dpkg-deb + dpkg-scanpackages, rpmbuild + createrepo_c),
 * served over HTTP and read through the signed indices as `bundle` reads them: each kernel brings what the GPU driver
 * container builds with, and a kernel the archive lacks stops the plan naming it and where it was looked for.
 */
async function rejection(promise: Promise<unknown>): Promise<AirgapError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isAirgapError(error)) throw new Error(`expected an AirgapError, got ${String(error)}`)
  return error
}

describe('kernels: the GPU driver build packages of each node kernel', () => {
  let work: string
  let http: HttpClient
  let key: AptSigningKey
  let upstreamKey: AptSigningKey
  let ubuntu: FileServer
  let rhel: FileServer
  let ubuntuKeyring: string
  let rhelKey: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'aa-kernels-'))
    http = new HttpClient()
    key = await generateAptSigningKey({
      homeDir: join(work, 'bundle-key'),
      userId: 'bundle <b@astrago.invalid>',
    })
    upstreamKey = await generateAptSigningKey({
      homeDir: join(work, 'upstream-key'),
      userId: 'upstream <u@astrago.invalid>',
    })
    ubuntuKeyring = await createUbuntuKernelArchive(join(work, 'deb'), join(work, 'ubuntu'), upstreamKey)
    rhelKey = await createRhelKernelRepository(join(work, 'rpm'), join(work, 'rhel'), upstreamKey)
    ubuntu = await startFileServer(join(work, 'ubuntu'))
    rhel = await startFileServer(join(work, 'rhel'))
  }, 300_000)

  afterAll(async () => {
    await ubuntu?.stop()
    await rhel?.stop()
    await http?.close()
    if (work) {
      await stopGpgAgent(join(work, 'bundle-key'))
      await stopGpgAgent(join(work, 'upstream-key'))
      await rm(work, { recursive: true, force: true })
    }
  })

  const aptSpec = (kernels: string[]): PackageRepositorySpec => ({
    name: 'ubuntu-jammy',
    apt: {
      mirror: ubuntu.url,
      suites: ['jammy'],
      components: ['main'],
      architectures: ['amd64'],
      keyrings: [ubuntuKeyring],
      trusted: false,
    },
    packages: ['socat'],
    kernels,
  })
  const rpmSpec = (kernels: string[]): PackageRepositorySpec => ({
    name: 'rhel9',
    rpm: {
      baseurl: rhel.url,
      architectures: ['x86_64', 'noarch'],
      keyrings: [rhelKey],
      trusted: false,
      signed: 'repomd',
    },
    packages: [],
    kernels,
  })

  it('apt: headers, image, modules (and modules-extra where the archive has it) with their closure', async () => {
    const planned = await planPackageRepository(aptSpec(UBUNTU_KERNELS), { http, key, base: work })
    const names = planned.packages.map((p) => p.name).sort()
    expect(names).toEqual(
      [
        'linux-headers-5.15.0-91',
        'linux-headers-5.15.0-91-generic',
        'linux-image-5.15.0-91-generic',
        'linux-modules-5.15.0-91-generic',
        'linux-modules-extra-5.15.0-91-generic',
        'linux-headers-6.8.0-1012',
        'linux-headers-6.8.0-1012-aws',
        'linux-image-6.8.0-1012-aws',
        'linux-modules-6.8.0-1012-aws',
        'socat',
      ].sort(),
    )
    expect(planned.requested).toEqual([
      'socat',
      'linux-headers-5.15.0-91-generic',
      'linux-image-5.15.0-91-generic',
      'linux-modules-5.15.0-91-generic',
      'linux-modules-extra-5.15.0-91-generic',
      'linux-headers-6.8.0-1012-aws',
      'linux-image-6.8.0-1012-aws',
      'linux-modules-6.8.0-1012-aws',
    ])
    // The closure as today: the headers' common package comes by dependency, and says so.
    expect(planned.packages.find((p) => p.name === 'linux-headers-5.15.0-91')?.reason).toEqual([
      'linux-headers-5.15.0-91-generic',
      'linux-headers-5.15.0-91',
    ])
  })

  it('apt: a kernel the archive does not carry is an error naming it and the suites searched', async () => {
    const error = await rejection(
      planPackageRepository(aptSpec(['5.15.0-200-generic']), { http, key, base: work }),
    )
    expect(error).toMatchObject({ code: 'E_INPUT' })
    expect(error.message).toContain('5.15.0-200-generic')
    expect(error.message).toContain('suites searched: jammy')
    expect(error.message).toContain('linux-image-5.15.0-200-generic')
    expect(error.hints.join(' ')).toMatch(/uname -r/)
  })

  it('rpm: kernel-headers, kernel-devel and kernel-core of that version, and gcc, with their closure', async () => {
    const planned = await planPackageRepository(rpmSpec([RHEL_KERNEL]), { http, key, base: work })
    const nevras = planned.packages.map((p) => `${p.name}-${p.version}`).sort()
    expect(nevras).toEqual(
      [
        'cpp-11.4.1-3.el9',
        'gcc-11.4.1-3.el9',
        'kernel-core-5.14.0-427.13.1.el9_4',
        'kernel-devel-5.14.0-427.13.1.el9_4',
        'kernel-headers-5.14.0-427.13.1.el9_4',
        'perl-interpreter-5.32.1-481.el9',
      ].sort(),
    )
    expect(planned.requested).toEqual([
      'kernel-headers = 5.14.0-427.13.1.el9_4',
      'kernel-devel = 5.14.0-427.13.1.el9_4',
      'kernel-core = 5.14.0-427.13.1.el9_4',
      'gcc',
    ])
  })

  it('rpm: a kernel the repository does not carry is an error naming it and the repository', async () => {
    const error = await rejection(
      planPackageRepository(rpmSpec(['5.14.0-362.8.1.el9_3.x86_64']), { http, key, base: work }),
    )
    expect(error).toMatchObject({ code: 'E_INPUT' })
    expect(error.message).toContain('5.14.0-362.8.1.el9_3.x86_64')
    expect(error.message).toContain(rhel.url)
    // kernel-headers of that version exists; the other two do not.
    expect(error.message).toContain('kernel-core-5.14.0-362.8.1.el9_3')
    expect(error.message).not.toContain('kernel-headers-5.14.0-362')
  })
})
