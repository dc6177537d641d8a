import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAirgapError } from '../../../src/errors.js'
import type { ProgressEvent } from '../../../src/events/types.js'
import { HttpClient } from '../../../src/net/http.js'
import { type AptBaseline, buildAptIndex, resolveAptClosure } from '../../../src/packages/apt-closure.js'
import { mirrorAptRepository, resolveAptPackages } from '../../../src/packages/apt-packages.js'
import { writeAptRepository } from '../../../src/packages/apt-repo-writer.js'
import { generateAptSigningKey, readSigningKey, stopGpgAgent } from '../../../src/packages/apt-signature.js'
import {
  downloadAptPackages,
  downloadVerified,
  fetchAptIndex,
  fetchAptRelease,
} from '../../../src/packages/apt-source.js'
import { ASTRAGO_DEBIAN_PACKAGES, type DebianMirror, debianMirror } from '../../support/debian-mirror.js'
import { inChroot, minbaseTarball, testCache } from '../../support/debootstrap.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { freePort } from '../../support/net.js'

/**
 * The apt oracle: mirror `nfs-common ipvsadm conntrack socat` from the Debian archive this machine's apt uses
 * (bookworm main, amd64, verified with debian-archive-keyring), write our signed repository, serve it on loopback,
 * and let the real apt of a fresh `debootstrap --variant=minbase bookworm` chroot install the set from it alone,
 * checking our signature (signed-by, not trusted=yes). The chroot is built once and cached as a tarball under
 * ~/.cache/astrago-airgap/debootstrap; indices and .deb files are cached content-addressed under …/apt.
 */

const run = promisify(execFile)
type InstalledPackage = NonNullable<AptBaseline['installed']>[number] & { version: string }
const REQUESTS = ['nfs-common', 'ipvsadm', 'conntrack', 'socat']
const aptCache = join(testCache, 'apt')

async function installedPackages(root: string): Promise<InstalledPackage[]> {
  const { stdout } = await inChroot(root, [
    'dpkg-query',
    '-W',
    '-f',
    // dpkg-query's own format placeholders, not a template literal.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query format
    '${Package}\t${Version}\t${Architecture}\t${Multi-Arch}\t${Provides}\n',
  ])
  return stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [pkg, version, architecture, multiArch, provides] = line.split('\t') as [
        string,
        string,
        string,
        string,
        string,
      ]
      return {
        package: pkg,
        version,
        architecture,
        ...(multiArch ? { multiArch: multiArch as InstalledPackage['multiArch'] } : {}),
        ...(provides ? { provides } : {}),
      }
    })
}

describe('apt repository mirrored from the Debian archive, installed by apt in a minbase chroot', () => {
  let mirror: DebianMirror
  let work: string
  let chroot: string
  let http: HttpClient
  let server: FileServer | undefined
  let gnupgHome: string | undefined
  let baseline: InstalledPackage[] = []

  beforeAll(async () => {
    mirror = debianMirror('bookworm')
    work = await mkdtemp(join(tmpdir(), 'aa-apt-'))
    chroot = join(work, 'chroot')
    http = new HttpClient()
    const tarball = await minbaseTarball(mirror)
    await mkdir(chroot)
    await run('tar', ['--numeric-owner', '-xpzf', tarball, '-C', chroot])
  }, 600_000)

  afterAll(async () => {
    await server?.stop()
    await http?.close()
    if (gnupgHome) await stopGpgAgent(gnupgHome)
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('resolves the closure apt would, writes a signed repository, and apt-get install succeeds from it alone', async () => {
    const source = {
      mirror: mirror.url,
      suite: mirror.suite,
      components: ['main'],
      architectures: ['amd64'],
      keyrings: [mirror.keyring],
    }
    const fetched = await fetchAptIndex({ http, source, cacheDir: aptCache })
    expect(fetched.release.codename).toBe('bookworm')
    expect(fetched.packages.length).toBeGreaterThan(50_000)
    const index = buildAptIndex(fetched.packages, { architecture: 'amd64' })

    // The baseline computed like debootstrap minbase (required + apt; debootstrap installs usr-is-merged itself)
    // is exactly what the real debootstrap installed.
    const before = await installedPackages(chroot)
    baseline = before
    const minbase = resolveAptClosure({
      index,
      requests: [],
      baseline: { priorities: ['required'], packages: ['apt', 'usr-is-merged'] },
    })
    expect(minbase.baseline.map((p) => p.package).sort()).toEqual(before.map((p) => p.package).sort())

    const closure = resolveAptClosure({ index, requests: REQUESTS, baseline: { installed: before } })
    const names = closure.packages.map((p) => p.package)
    expect(names).toEqual(expect.arrayContaining([...REQUESTS, 'rpcbind', 'libtirpc3']))
    expect(closure.reasons.get('libtirpc3:amd64')?.[0]).toMatch(/nfs-common|rpcbind/)

    // The second oracle: what the real apt of the same chroot would install from the real archive.
    await writeFile(
      join(chroot, 'etc/apt/sources.list.d/debian.sources'),
      `Types: deb\nURIs: ${mirror.url}\nSuites: ${mirror.suite}\nComponents: main contrib non-free non-free-firmware\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
    )
    await inChroot(chroot, ['apt-get', 'update'])
    const simulated = await inChroot(chroot, [
      'apt-get',
      'install',
      '-s',
      '--no-install-recommends',
      ...REQUESTS,
    ])
    const aptWouldInstall = [...simulated.stdout.matchAll(/^Inst (\S+) (?:\[[^\]]*\] )?\((\S+)/gm)].map(
      (m) => `${m[1]}=${m[2]}`,
    )
    expect(closure.packages.map((p) => `${p.package}=${p.version}`).sort()).toEqual(aptWouldInstall.sort())
    // The same for the whole Astrago node package list (216 packages at the time of writing).
    const astrago = resolveAptClosure({
      index,
      requests: ASTRAGO_DEBIAN_PACKAGES,
      baseline: { installed: before },
    })
    const aptAstrago = await inChroot(chroot, [
      'apt-get',
      'install',
      '-s',
      '--no-install-recommends',
      ...ASTRAGO_DEBIAN_PACKAGES,
    ])
    expect(astrago.packages.map((p) => `${p.package}=${p.version}`).sort()).toEqual(
      [...aptAstrago.stdout.matchAll(/^Inst (\S+) (?:\[[^\]]*\] )?\((\S+)/gm)]
        .map((m) => `${m[1]}=${m[2]}`)
        .sort(),
    )

    // And for the GPU driver from non-free with the kernel headers it builds against (151 packages when written).
    const gpuIndex = await fetchAptIndex({
      http,
      source: { ...source, components: ['main', 'contrib', 'non-free', 'non-free-firmware'] },
      cacheDir: aptCache,
    })
    const gpuRequests = ['nvidia-driver', 'linux-headers-amd64']
    const gpu = resolveAptClosure({
      index: buildAptIndex(gpuIndex.packages, { architecture: 'amd64' }),
      requests: gpuRequests,
      baseline: { installed: before },
    })
    const aptGpu = await inChroot(chroot, [
      'apt-get',
      'install',
      '-s',
      '--no-install-recommends',
      ...gpuRequests,
    ])
    expect(gpu.packages.map((p) => `${p.package}=${p.version}`).sort()).toEqual(
      [...aptGpu.stdout.matchAll(/^Inst (\S+) (?:\[[^\]]*\] )?\((\S+)/gm)]
        .map((m) => `${m[1]}=${m[2]}`)
        .sort(),
    )

    const pool = join(aptCache, 'debs')
    await downloadAptPackages({
      http,
      mirror: mirror.url,
      packages: closure.packages,
      dir: pool,
      concurrency: 4,
    })

    gnupgHome = join(work, 'gnupg')
    const key = await generateAptSigningKey({
      homeDir: gnupgHome,
      userId: 'astrago-airgap test repository <airgap@astrago.invalid>',
    })
    const repoDir = join(work, 'repo')
    const write = (dir: string) =>
      writeAptRepository({
        dir,
        suite: 'bookworm',
        architectures: ['amd64'],
        packages: closure.packages.map((control) => ({ control, file: join(pool, control.filename) })),
        key,
      })
    const repository = await write(repoDir)
    // Deterministic: a second write with the same key gives the same bytes, signatures included.
    const again = await write(join(work, 'repo-again'))
    expect(again.files).toEqual(repository.files)
    for (const file of repository.files.filter((f) => !f.startsWith('pool/')))
      expect(await readFile(join(work, 'repo-again', file)), file).toEqual(
        await readFile(join(repoDir, file)),
      )
    server = await startFileServer(repoDir)

    // Our own fetcher accepts our repository with our key, and only with it.
    const ours = await fetchAptIndex({
      http,
      source: { ...source, mirror: server.url, keyrings: [repository.publicKeyPath] },
    })
    expect(ours.packages.map((p) => p.package).sort()).toEqual([...names].sort())
    await expect(
      fetchAptRelease({ http, source: { ...source, mirror: server.url, keyrings: [mirror.keyring] } }),
    ).rejects.toMatchObject({ code: 'E_INTEGRITY' })

    // The chroot's only apt source is our repository, checked with our key.
    await mkdir(join(chroot, 'etc/apt/keyrings'), { recursive: true })
    await copyFile(repository.publicKeyPath, join(chroot, 'etc/apt/keyrings/astrago-airgap.gpg'))
    await chmod(join(chroot, 'etc/apt/keyrings/astrago-airgap.gpg'), 0o644)
    await rm(join(chroot, 'etc/apt/sources.list'), { force: true })
    await run('sh', ['-c', `rm -rf '${chroot}'/etc/apt/sources.list.d/* '${chroot}'/var/lib/apt/lists/*`])
    await writeFile(
      join(chroot, 'etc/apt/sources.list.d/astrago-airgap.sources'),
      repository.sourcesEntry(server.url, '/etc/apt/keyrings/astrago-airgap.gpg'),
    )
    expect(await readFile(join(chroot, 'etc/apt/sources.list.d/astrago-airgap.sources'), 'utf8')).not.toMatch(
      /trusted/i,
    )
    // No services start inside the chroot.
    await writeFile(join(chroot, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 })

    await inChroot(chroot, ['apt-get', 'update'])
    await inChroot(chroot, ['apt-get', 'install', '-y', ...REQUESTS])

    // What apt installed is exactly our closure: nothing missing (it would have failed), nothing extra.
    const after = await installedPackages(chroot)
    const changed = after
      .filter((p) => !before.some((b) => b.package === p.package && b.version === p.version))
      .map((p) => `${p.package}=${p.version}`)
    expect(changed.sort()).toEqual(closure.packages.map((p) => `${p.package}=${p.version}`).sort())
  })

  it('refuses a tampered InRelease and unsigned metadata unless trusted, and a .deb whose checksum differs', async () => {
    expect(server).toBeDefined()
    const repoDir = join(work, 'repo')
    const source = {
      mirror: server!.url,
      suite: 'bookworm',
      components: ['main'],
      architectures: ['amd64'],
      keyrings: [join(repoDir, 'repository-key.gpg')],
    }
    const inRelease = join(repoDir, 'dists/bookworm/InRelease')
    const original = await readFile(inRelease, 'utf8')
    try {
      await writeFile(inRelease, original.replace('Suite: bookworm', 'Suite: bookwurm'))
      const tampered = await fetchAptRelease({ http, source }).catch((error: unknown) => error)
      expect(isAirgapError(tampered) && tampered.code).toBe('E_INTEGRITY')
      // The real apt of the chroot refuses it as well: it reports BADSIG and keeps its previous lists (apt-get
      // update still exits 0 in that case, by design).
      const aptUpdate = await inChroot(chroot, ['apt-get', 'update']).catch(
        (error: { stdout: string; stderr: string }) => error,
      )
      expect(aptUpdate.stdout + aptUpdate.stderr).toMatch(/BADSIG/)
      expect(aptUpdate.stderr).toMatch(/repository is not updated/)

      // No InRelease, no Release.gpg: unsigned.
      await rm(inRelease)
      const releaseGpg = join(repoDir, 'dists/bookworm/Release.gpg')
      const signature = await readFile(releaseGpg)
      await rm(releaseGpg)
      const unsigned = await fetchAptRelease({ http, source }).catch((error: unknown) => error)
      expect(isAirgapError(unsigned) && unsigned.code).toBe('E_INTEGRITY')
      const trusted = await fetchAptRelease({ http, source: { ...source, trusted: true } })
      expect(trusted.release.suite).toBe('bookworm')
      await writeFile(releaseGpg, signature)
      // Release + Release.gpg (detached) is accepted with the key.
      expect((await fetchAptRelease({ http, source })).release.sha256.size).toBeGreaterThan(0)
    } finally {
      await writeFile(inRelease, original)
    }

    const deb = (await fetchAptIndex({ http, source })).packages[0]!
    const wrong = await downloadVerified(http, `${server!.url}/${deb.filename}`, join(work, 'wrong.deb'), {
      sha256: '0'.repeat(64),
      size: deb.size,
    }).catch((error: unknown) => error)
    expect(isAirgapError(wrong) && wrong.code).toBe('E_INTEGRITY')
    expect(existsSync(join(work, 'wrong.deb'))).toBe(false)
    expect(existsSync(join(work, 'wrong.deb.partial'))).toBe(false)

    // An interrupted download resumes from its .partial file (Range), and the result is still checked.
    const debBytes = await readFile(join(repoDir, deb.filename))
    const resumed = join(work, 'resumed.deb')
    await writeFile(`${resumed}.partial`, debBytes.subarray(0, Math.floor(debBytes.length / 2)))
    expect(await downloadVerified(http, `${server!.url}/${deb.filename}`, resumed, deb)).toBe(true)
    expect(await readFile(resumed)).toEqual(debBytes)
    expect(await downloadVerified(http, `${server!.url}/${deb.filename}`, resumed, deb)).toBe(false)
    const corrupt = join(work, 'corrupt.deb')
    await writeFile(`${corrupt}.partial`, Buffer.alloc(100, 1))
    const mismatch = await downloadVerified(http, `${server!.url}/${deb.filename}`, corrupt, deb).catch(
      (error: unknown) => error,
    )
    expect(isAirgapError(mismatch) && mismatch.code).toBe('E_INTEGRITY')
    expect(existsSync(`${corrupt}.partial`)).toBe(false)

    // A repository that lacks a dependency: the error names the package and the chain.
    const missing = await resolveAptPackages({
      http,
      source,
      requests: ['nfs-common'],
      baseline: { installed: [] },
    }).catch((error: unknown) => error)
    expect(isAirgapError(missing) && missing.code).toBe('E_INPUT')
    expect(isAirgapError(missing) && missing.message).toMatch(/^cannot install nfs-common: nfs-common → /)

    // The one-call API: re-mirror our served repository (checked with our key) into another one, with progress.
    const events: ProgressEvent[] = []
    const mirrored = await mirrorAptRepository({
      http,
      source,
      requests: REQUESTS,
      baseline: { installed: baseline },
      poolDir: join(work, 'pool-again'),
      repoDir: join(work, 'repo-mirrored'),
      key: await readSigningKey(gnupgHome!),
      sink: { emit: (event) => events.push(event) },
    })
    const served = (await fetchAptIndex({ http, source })).packages.map((p) => p.package).sort()
    expect(mirrored.packages.map((p) => p.package).sort()).toEqual(served)
    expect(existsSync(join(work, 'repo-mirrored/dists/bookworm/InRelease'))).toBe(true)
    expect(events.filter((e) => e.type === 'task.end').map((e) => e.type === 'task.end' && e.status)).toEqual(
      ['done', 'done', 'done'],
    )
    expect(events.some((e) => e.type === 'task.progress' && e.unit === 'bytes' && e.done === e.total)).toBe(
      true,
    )

    // A mirror that is down: E_REMOTE naming the URL.
    const down = `http://127.0.0.1:${await freePort()}`
    const noRetries = new HttpClient({ retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } })
    try {
      const unreachable = await fetchAptRelease({
        http: noRetries,
        source: { ...source, mirror: down },
      }).catch((error: unknown) => error)
      expect(isAirgapError(unreachable) && unreachable.code).toBe('E_REMOTE')
      expect(isAirgapError(unreachable) && unreachable.message).toContain(`${down}/dists/bookworm/InRelease`)
    } finally {
      await noRetries.close()
    }
  })
})
