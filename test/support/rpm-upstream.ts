import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  type AptSigningKey,
  detachSign,
  exportPublicKey,
  generateAptSigningKey,
} from '../../src/packages/apt-signature.js'
import { findTool } from './tools.js'

/**
 * An rpm upstream for the tests: a dozen noarch RPMs with real dependencies between them, built with rpmbuild,
 * indexed with createrepo_c (xz metadata) and signed (repomd.xml.asc) with a test key. See rpm-repo.test.ts for what
 * each package exercises; EXPECTED is what installing `app` must bring.
 */
const run = promisify(execFile)

interface Spec {
  name: string
  version?: string
  tags?: string[]
  files?: string[]
}

export const SPECS: Spec[] = [
  {
    name: 'app',
    tags: [
      'Requires: lib-a >= 2',
      'Requires: /usr/share/data-pkg/marker',
      'Requires: /usr/bin/helper-tool',
      'Requires: (extra-b or extra-a)',
    ],
    files: ['/usr/bin/app'],
  },
  { name: 'lib-a', version: '1.0', tags: ['Requires: shell-tools'], files: ['/usr/lib/lib-a/v1'] },
  { name: 'lib-a', version: '2.0', tags: ['Requires: shell-tools'], files: ['/usr/lib/lib-a/v2'] },
  {
    name: 'alt-tools',
    tags: ['Provides: shell-tools = 1.0', 'Conflicts: data-pkg'],
    files: ['/usr/bin/alt'],
  },
  { name: 'tools-impl', tags: ['Provides: shell-tools = 1.0'], files: ['/usr/bin/tools-impl'] },
  { name: 'data-pkg', files: ['/usr/share/data-pkg/marker'] },
  { name: 'helper', files: ['/usr/bin/helper-tool'] },
  { name: 'extra-a', files: ['/usr/share/extra-a/x'] },
  { name: 'extra-b', files: ['/usr/share/extra-b/x'] },
  { name: 'unrelated', files: ['/usr/share/unrelated/x'] },
  { name: 'broken', tags: ['Requires: middle'], files: ['/usr/share/broken/x'] },
  { name: 'middle', tags: ['Requires: libmissing.so.1()(64bit)'], files: ['/usr/share/middle/x'] },
]

export const EXPECTED = [
  'app-1.0-1.noarch',
  'data-pkg-1.0-1.noarch',
  'extra-a-1.0-1.noarch',
  'helper-1.0-1.noarch',
  'lib-a-2.0-1.noarch',
  'tools-impl-1.0-1.noarch',
]

function specText(spec: Spec): string {
  const install = (spec.files ?? [])
    .map((f) => `mkdir -p %{buildroot}$(dirname ${f})\necho '${spec.name}' > %{buildroot}${f}`)
    .join('\n')
  return [
    `Name: ${spec.name}`,
    `Version: ${spec.version ?? '1.0'}`,
    'Release: 1',
    `Summary: ${spec.name} for the astrago-airgap rpm oracle & <its> "tests"`,
    'License: MIT',
    'BuildArch: noarch',
    'AutoReqProv: no',
    ...(spec.tags ?? []),
    '',
    '%description',
    `${spec.name}: a synthetic package.`,
    '',
    '%install',
    install,
    '',
    '%files',
    ...(spec.files ?? []),
    '',
    '%changelog',
    '* Thu Nov 26 2026 Test <test@astrago.invalid> - 1.0-1',
    '- built for the test',
    '',
  ].join('\n')
}

async function buildRpms(work: string, out: string): Promise<void> {
  const rpmbuild = findTool('rpmbuild')
  const top = join(work, 'rpmbuild')
  await mkdir(out, { recursive: true })
  await Promise.all(
    SPECS.map(async (spec, i) => {
      const file = join(work, `${spec.name}-${i}.spec`)
      await writeFile(file, specText(spec))
      await run(rpmbuild, [
        '--quiet',
        '--define',
        `_topdir ${top}-${i}`,
        '--define',
        `_rpmdir ${out}`,
        '--define',
        '_build_name_fmt %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm',
        '-bb',
        file,
      ])
    }),
  )
}

export interface RpmUpstream {
  dir: string
  /** The armoured public key repomd.xml.asc is signed with. */
  keyFile: string
  key: AptSigningKey
}

/**
 * Builds the packages into `dir`, indexes and signs it (the key in the GnuPG home `gnupgHome`): repomd.xml.asc by
 * default, or (`signPackages`) every .rpm with rpmsign and no repomd.xml.asc, as distributions that sign packages do.
 */
export async function createRpmUpstream(
  work: string,
  dir: string,
  gnupgHome: string,
  options: { signPackages?: boolean } = {},
): Promise<RpmUpstream> {
  await buildRpms(work, dir)
  const key = await generateAptSigningKey({
    homeDir: gnupgHome,
    userId: 'upstream test repository <upstream@astrago.invalid>',
  })
  if (options.signPackages) {
    const rpms = (await readdir(dir)).filter((f) => f.endsWith('.rpm')).map((f) => join(dir, f))
    await run(findTool('rpmsign'), [
      '--define',
      `__gpg ${findTool('gpg')}`,
      '--define',
      `_gpg_name ${key.fingerprint}`,
      '--define',
      `_gpg_path ${gnupgHome}`,
      '--define',
      "_gpg_sign_cmd_extra_args --batch --pinentry-mode loopback --passphrase ''",
      '--addsign',
      ...rpms,
    ])
  }
  await run(findTool('createrepo_c'), ['--quiet', '--no-database', '--general-compress-type=xz', dir])
  if (!options.signPackages) {
    const repomd = await readFile(join(dir, 'repodata/repomd.xml'), 'utf8')
    await writeFile(join(dir, 'repodata/repomd.xml.asc'), await detachSign(key, repomd, new Date()))
  }
  const keyFile = join(work, 'upstream-key.asc')
  await writeFile(keyFile, await exportPublicKey(key, true))
  return { dir, keyFile, key }
}
