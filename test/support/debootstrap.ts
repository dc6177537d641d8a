import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { DebianMirror } from './debian-mirror.js'
import { findTool } from './tools.js'

/**
 * A fresh `debootstrap --variant=minbase` root of the Debian release this machine's apt uses, built once and cached
 * as a tarball under ~/.cache/astrago-airgap/debootstrap (no lists, no cached .deb files, no sources left inside),
 * and a way to run commands in it with a clean environment.
 */
const run = promisify(execFile)
export const testCache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'astrago-airgap')

export async function minbaseTarball(mirror: DebianMirror): Promise<string> {
  const tarball = join(testCache, 'debootstrap', `${mirror.suite}-minbase-amd64.tar.gz`)
  if (existsSync(tarball)) return tarball
  const debootstrap = findTool('debootstrap')
  const work = await mkdtemp(join(tmpdir(), 'aa-debootstrap-'))
  try {
    const root = join(work, 'root')
    await run(debootstrap, ['--variant=minbase', '--arch=amd64', mirror.suite, root, mirror.url], {
      maxBuffer: 64 << 20,
    })
    // Nothing of the upstream source stays behind: no lists, no cached debs, no sources.list.
    await run('sh', [
      '-c',
      `rm -rf '${root}'/var/lib/apt/lists/* '${root}'/var/cache/apt/archives/*.deb '${root}'/etc/apt/sources.list`,
    ])
    await mkdir(join(testCache, 'debootstrap'), { recursive: true })
    await run('tar', ['--numeric-owner', '-czf', `${tarball}.partial`, '-C', root, '.'])
    await rename(`${tarball}.partial`, tarball)
    return tarball
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

export async function inChroot(root: string, command: string[]): Promise<{ stdout: string; stderr: string }> {
  return await run(
    'chroot',
    [
      root,
      'env',
      '-i',
      'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
      'DEBIAN_FRONTEND=noninteractive',
      'LC_ALL=C',
      ...command,
    ],
    { maxBuffer: 64 << 20 },
  )
}

/** Unpacks the cached minbase root into `dir` (created). */
export async function unpackMinbase(mirror: DebianMirror, dir: string): Promise<void> {
  const tarball = await minbaseTarball(mirror)
  await mkdir(dir, { recursive: true })
  await run('tar', ['--numeric-owner', '-xpzf', tarball, '-C', dir])
}
