import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAirgapError } from '../../../src/errors.js'
import { HttpClient } from '../../../src/net/http.js'
import {
  type AptSigningKey,
  generateAptSigningKey,
  stopGpgAgent,
} from '../../../src/packages/apt-signature.js'
import { type PlannedPackageRepository, writePlannedRepository } from '../../../src/packages/repository.js'
import {
  downloadPlannedPackages,
  planRpmPackages,
  resolveRpmPackages,
} from '../../../src/packages/rpm-packages.js'
import { rpmRepoFile } from '../../../src/packages/rpm-repo-writer.js'
import { fetchRepomd, type RpmSource } from '../../../src/packages/rpm-source.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { freePort } from '../../support/net.js'
import { createRpmUpstream, EXPECTED, SPECS } from '../../support/rpm-upstream.js'
import { findTool } from '../../support/tools.js'

/**
 * The rpm oracle: build a handful of noarch RPMs with real dependencies between them (rpmbuild), index them with
 * createrepo_c (xz-compressed metadata) as the upstream and sign its repomd.xml with a test key, serve it on loopback,
 * mirror it with our code (checking that signature), write OUR signed repository, serve it, and let the real dnf
 * install the requested packages into an empty --installroot from our repository alone, checking our repomd.xml
 * signature (repo_gpgcheck=1 with our key). What rpm then has installed must be exactly our closure, and exactly
 * what dnf itself installs from the whole upstream (the second oracle: same choices between versions and providers).
 *
 * The packages:
 *   app 1.0        Requires: lib-a >= 2, /usr/share/data-pkg/marker (only in filelists.xml), /usr/bin/helper-tool
 *                  (in primary.xml), (extra-b or extra-a)
 *   lib-a 1.0, 2.0 Requires: shell-tools (virtual)            → 2.0, the newer, which app needs anyway
 *   alt-tools      Provides: shell-tools, Conflicts: data-pkg → ruled out by the conflict
 *   tools-impl     Provides: shell-tools                      → the provider chosen
 *   data-pkg       ships /usr/share/data-pkg/marker
 *   helper         ships /usr/bin/helper-tool
 *   extra-a, extra-b                                          → extra-a: libsolv picks by name, not by position
 *   unrelated      nothing needs it: must not be mirrored
 *   broken → middle → libmissing.so.1()(64bit), which nothing provides
 */

const run = promisify(execFile)

describe('rpm repository mirrored from a createrepo_c upstream, installed by dnf into an empty root', () => {
  let work: string
  let upstreamDir: string
  let upstream: FileServer | undefined
  let ours: FileServer | undefined
  let http: HttpClient
  let upstreamKey: AptSigningKey
  let key: AptSigningKey
  let source: RpmSource
  let plan: PlannedPackageRepository
  const homes: string[] = []

  beforeAll(async () => {
    // Every tool first: a missing one fails the test with how to get it.
    for (const tool of ['rpmbuild', 'createrepo_c', 'dnf', 'rpm', 'gpg', 'gpgv', 'xz']) findTool(tool)
    work = await mkdtemp(join(tmpdir(), 'aa-rpm-'))
    http = new HttpClient()
    upstreamDir = join(work, 'upstream')
    homes.push(join(work, 'upstream-gnupg'), join(work, 'gnupg'))
    upstreamKey = (await createRpmUpstream(work, upstreamDir, homes[0]!)).key
    key = await generateAptSigningKey({
      homeDir: homes[1]!,
      userId: 'astrago-airgap test rpm repository <airgap@astrago.invalid>',
    })
    upstream = await startFileServer(upstreamDir)
    source = { baseurl: upstream.url, architectures: ['x86_64'], keyrings: [join(work, 'upstream-key.asc')] }
  })

  afterAll(async () => {
    await upstream?.stop()
    await ours?.stop()
    await http?.close()
    for (const home of homes) await stopGpgAgent(home)
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('resolves the closure dnf would, writes a signed repository, and dnf installs from it alone', async () => {
    const started = performance.now()
    const date = new Date('2026-11-26T12:00:00Z')
    const planned = await planRpmPackages({
      http,
      source,
      requests: ['app'],
      cacheDir: join(work, 'cache'),
      name: 'test',
      key,
      date,
    })
    plan = planned.plan
    const { resolved } = planned
    expect(resolved.indexSize).toBe(SPECS.length)
    expect(resolved.repomd.fingerprints).toEqual([upstreamKey.fingerprint])
    const nevras = resolved.packages.map((p) => `${p.name}-${p.version}-${p.release}.${p.arch}`)
    expect(nevras).toEqual(EXPECTED)
    expect(resolved.reasons.get('tools-impl.noarch')).toEqual(['app', 'lib-a', 'tools-impl'])
    expect(resolved.reasons.get('data-pkg.noarch')).toEqual(['app', 'data-pkg'])
    // The chosen packages' filelists and other blocks came from upstream (data-pkg's marker is only there).
    expect(resolved.filelists.size).toBe(EXPECTED.length)
    expect(resolved.other.size).toBe(EXPECTED.length)
    expect([...resolved.filelists.values()].find((b) => b.name === 'data-pkg')?.raw).toContain(
      '/usr/share/data-pkg/marker',
    )

    expect(plan.kind).toBe('rpm')
    expect(plan.packages.map((p) => p.path)).toEqual(
      EXPECTED.map((nevra) => `Packages/${nevra[0]}/${nevra}.rpm`),
    )
    expect(plan.packages.every((p) => p.url.startsWith(`${upstream!.url}/`))).toBe(true)
    expect(plan.metadata.map((m) => m.path)).toEqual(
      expect.arrayContaining(['repodata/repomd.xml', 'repodata/repomd.xml.asc', 'repository-key.asc']),
    )
    // Deterministic: the same input, key and date give the same bytes, signature included.
    const again = await planRpmPackages({ http, source, requests: ['app'], name: 'test', key, date })
    expect(again.plan.metadata).toEqual(plan.metadata)

    const files = await downloadPlannedPackages({ http, packages: plan.packages, dir: join(work, 'rpms') })
    const repoDir = join(work, 'ours')
    await writePlannedRepository(plan, repoDir, files)
    const resolveAndWriteMs = performance.now() - started
    ours = await startFileServer(repoDir)

    // Our own reader accepts our repository with our key, and only with it.
    const ourSource = {
      baseurl: ours.url,
      architectures: ['x86_64'],
      keyrings: [join(repoDir, 'repository-key.asc')],
    }
    const reread = await resolveRpmPackages({ http, source: ourSource, requests: ['app'] })
    expect(reread.packages.map((p) => `${p.name}-${p.version}-${p.release}.${p.arch}`)).toEqual(EXPECTED)
    await expect(
      fetchRepomd({ http, source: { ...ourSource, keyrings: [join(work, 'upstream-key.asc')] } }),
    ).rejects.toMatchObject({ code: 'E_INTEGRITY' })

    // dnf, with our repository as its only one, checking repomd.xml with our key.
    const root = join(work, 'root')
    const reposDir = join(work, 'yum.repos.d')
    await mkdir(root)
    await mkdir(reposDir)
    const conf = join(work, 'dnf.conf')
    await writeFile(
      conf,
      [
        '[main]',
        'gpgcheck=0',
        'repo_gpgcheck=1',
        'install_weak_deps=False',
        `reposdir=${reposDir}`,
        `cachedir=${join(work, 'dnf-cache')}`,
        `logdir=${join(work, 'dnf-log')}`,
        'keepcache=0',
        'skip_if_unavailable=False',
        '',
      ].join('\n'),
    )
    const repoFile = rpmRepoFile({ id: 'astrago-test', url: ours.url })
    expect(repoFile).toContain('repo_gpgcheck=1')
    expect(repoFile).toContain(`gpgkey=${ours.url}/repository-key.asc`)
    await writeFile(join(reposDir, 'astrago-test.repo'), repoFile)
    const dnfIn = (installroot: string, repos: string, args: string[]) =>
      run(
        findTool('dnf'),
        [
          `--installroot=${installroot}`,
          `--config=${conf}`,
          `--setopt=reposdir=${repos}`,
          '--releasever=1',
          '--assumeyes',
          ...args,
        ],
        { maxBuffer: 16 << 20, env: { ...process.env, LC_ALL: 'C.UTF-8' } },
      )
    const dnf = (args: string[]) => dnfIn(root, reposDir, args)
    const rpmQa = async (installroot: string) =>
      (
        await run(findTool('rpm'), [
          '--root',
          installroot,
          '-qa',
          '--qf',
          '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n',
        ])
      ).stdout
        .trim()
        .split('\n')
        .sort()
    const dnfStarted = performance.now()
    const installed = await dnf(['install', 'app']).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`dnf install failed:\n${error.stdout}\n${error.stderr}`)
    })
    const dnfMs = performance.now() - dnfStarted
    expect(installed.stdout).toMatch(/Complete!/)
    // dnf took our key from the served repository, for repo_gpgcheck.
    expect(installed.stderr + installed.stdout).toContain(`From       : ${ours.url}/repository-key.asc`)
    expect(await rpmQa(root)).toEqual(EXPECTED)
    expect(await readFile(join(root, 'usr/share/data-pkg/marker'), 'utf8')).toBe('data-pkg\n')
    console.log(
      `rpm oracle: resolve + plan + download + write ${resolveAndWriteMs.toFixed(0)} ms, dnf install ${dnfMs.toFixed(0)} ms`,
    )

    // The second oracle: dnf's own choice from the whole upstream (checked with the upstream key) is our closure:
    // lib-a 2.0 not 1.0, tools-impl not the conflicting alt-tools (first by name), extra-a not extra-b (though listed first),
    // nothing unrelated.
    const upstreamRoot = join(work, 'root-upstream')
    const upstreamRepos = join(work, 'upstream.repos.d')
    await mkdir(upstreamRoot)
    await mkdir(upstreamRepos)
    await writeFile(
      join(upstreamRepos, 'upstream.repo'),
      rpmRepoFile({ id: 'upstream', url: upstream!.url, gpgkey: `file://${join(work, 'upstream-key.asc')}` }),
    )
    await dnfIn(upstreamRoot, upstreamRepos, ['install', 'app'])
    expect(await rpmQa(upstreamRoot)).toEqual(EXPECTED)

    // dnf refuses our repository when its repomd.xml no longer matches the signature.
    const repomdPath = join(repoDir, 'repodata/repomd.xml')
    const original = await readFile(repomdPath, 'utf8')
    try {
      await writeFile(repomdPath, original.replace(/<revision>\d+/, '<revision>1'))
      await rm(join(work, 'dnf-cache'), { recursive: true, force: true })
      const refused = await dnf(['makecache']).then(
        (r) => ({ failed: false, output: r.stdout + r.stderr }),
        (error: { stdout?: string; stderr?: string }) => ({
          failed: true,
          output: `${error.stdout}${error.stderr}`,
        }),
      )
      expect(refused.failed, refused.output).toBe(true)
      expect(refused.output).toMatch(/repomd\.xml GPG signature verification error: Bad GPG signature/)
    } finally {
      await writeFile(repomdPath, original)
    }
  })

  it('refuses a tampered or missing repomd signature unless trusted, a corrupt .rpm, and names a broken chain', async () => {
    const repomdPath = join(upstreamDir, 'repodata/repomd.xml')
    const signaturePath = `${repomdPath}.asc`
    const original = await readFile(repomdPath, 'utf8')
    const signature = await readFile(signaturePath)
    try {
      await writeFile(repomdPath, original.replace('<revision>', '<revision>1'))
      const tampered = await fetchRepomd({ http, source }).catch((error: unknown) => error)
      expect(isAirgapError(tampered) && tampered.code).toBe('E_INTEGRITY')
      expect(isAirgapError(tampered) && tampered.message).toMatch(
        /repomd\.xml: signature verification failed: BADSIG/,
      )
      await writeFile(repomdPath, original)

      // Signed by a key that is not the source's.
      const foreign = await fetchRepomd({
        http,
        source: { ...source, keyrings: [join(work, 'ours', 'repository-key.asc')] },
      }).catch((error: unknown) => error)
      expect(isAirgapError(foreign) && foreign.code).toBe('E_INTEGRITY')

      await rm(signaturePath)
      const unsigned = await fetchRepomd({ http, source }).catch((error: unknown) => error)
      expect(isAirgapError(unsigned) && unsigned.code).toBe('E_INTEGRITY')
      expect(isAirgapError(unsigned) && unsigned.message).toMatch(/is not signed/)
      const trusted = await fetchRepomd({ http, source: { ...source, trusted: true } })
      expect(trusted.repomd.data.map((d) => d.type).sort()).toEqual(['filelists', 'other', 'primary'])
      expect(trusted.fingerprints).toEqual([])
    } finally {
      await writeFile(repomdPath, original)
      await writeFile(signaturePath, signature)
    }

    // An .rpm whose bytes differ from primary's sha256: the error names the package.
    const helper = plan.packages.find((p) => p.name === 'helper')!
    const file = join(upstreamDir, (await readdir(upstreamDir)).find((f) => f.startsWith('helper-'))!)
    const bytes = await readFile(file)
    try {
      const corrupt = Buffer.from(bytes)
      corrupt[corrupt.length - 1] = corrupt[corrupt.length - 1]! ^ 0xff
      await writeFile(file, corrupt)
      const mismatch = await downloadPlannedPackages({
        http,
        packages: [helper],
        dir: join(work, 'rpms-corrupt'),
      }).catch((error: unknown) => error)
      expect(isAirgapError(mismatch) && mismatch.code).toBe('E_INTEGRITY')
      expect(isAirgapError(mismatch) && mismatch.message).toMatch(
        /^helper 1\.0-1 \(noarch\): .*checksum mismatch/,
      )
    } finally {
      await writeFile(file, bytes)
    }

    // An unsatisfiable request names the chain.
    const broken = await resolveRpmPackages({ http, source, requests: ['broken'] }).catch(
      (error: unknown) => error,
    )
    expect(isAirgapError(broken) && broken.code).toBe('E_INPUT')
    expect(isAirgapError(broken) && broken.message).toBe(
      'cannot install broken: broken → middle: nothing provides libmissing.so.1()(64bit)',
    )
    const unknown = await resolveRpmPackages({ http, source, requests: ['no-such-package'] }).catch(
      (error: unknown) => error,
    )
    expect(isAirgapError(unknown) && unknown.message).toMatch(/no-such-package/)

    // A baseurl without repodata, and a mirror that is down: E_REMOTE naming the URL.
    const empty = await fetchRepomd({
      http,
      source: { ...source, baseurl: `${upstream!.url}/nothing` },
    }).catch((error: unknown) => error)
    expect(isAirgapError(empty) && empty.code).toBe('E_REMOTE')
    expect(isAirgapError(empty) && empty.message).toContain(`${upstream!.url}/nothing/repodata/repomd.xml`)
    const down = `http://127.0.0.1:${await freePort()}`
    const noRetries = new HttpClient({ retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } })
    try {
      const unreachable = await fetchRepomd({ http: noRetries, source: { ...source, baseurl: down } }).catch(
        (error: unknown) => error,
      )
      expect(isAirgapError(unreachable) && unreachable.code).toBe('E_REMOTE')
      expect(isAirgapError(unreachable) && unreachable.message).toContain(`${down}/repodata/repomd.xml`)
    } finally {
      await noRetries.close()
    }
  })
})
