/**
 * A STAND-IN apt archive for scripts/demo: for a definition's apt source (say http://archive.ubuntu.com/ubuntu, suites
 * jammy and jammy-updates), small but real .deb packages (built with dpkg-deb) under the names and dependencies
 * scripts/demo-data/upstream.yaml lists, indexed per suite and signed with a demo key, laid out as the real archive
 * is (dists/<suite>/InRelease, dists/<suite>/<component>/binary-<arch>/Packages.gz, pool/…). `bundle` reads it
 * through --mirror, checking its signature with --mirror-keyring (a real mirror that re-signs works the same way).
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import {
  type AptSigningKey,
  clearsign,
  exportPublicKey,
  generateAptSigningKey,
  readSigningKey,
} from '../src/packages/apt-signature.js'
import type { AptSourceSpec } from '../src/spec/types.js'

export interface StandInDeb {
  version: string
  depends?: string
  priority?: string
  /** The suite it is in (default: the first); kernel headers live in -updates on Ubuntu. */
  suite?: string
}

const DATE = new Date('2026-01-15T00:00:00Z')
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

export async function demoArchiveKey(dir: string): Promise<{ key: AptSigningKey; keyring: string }> {
  const home = join(dir, 'gnupg')
  const key = existsSync(join(home, 'pubring.kbx'))
    ? await readSigningKey(home)
    : await generateAptSigningKey({
        homeDir: home,
        userId: 'astrago-airgap DEMO stand-in archive key <demo@astrago.invalid>',
        created: DATE,
      })
  const keyring = join(dir, 'demo-archive-keyring.gpg')
  writeFileSync(keyring, await exportPublicKey(key))
  return { key, keyring }
}

/** Writes the stand-in archive for `source` under `root` (the folder served as the mirror URL). */
export async function writeStandInArchive(
  root: string,
  source: AptSourceSpec,
  debs: Record<string, StandInDeb>,
  key: AptSigningKey,
): Promise<number> {
  const arch = source.architectures[0] ?? 'amd64'
  const component = source.components[0] ?? 'main'
  const bySuite = new Map<string, string[]>(source.suites.map((s) => [s, []]))
  const work = mkdtempSync(join(tmpdir(), 'aa-demo-deb-'))
  try {
    for (const [name, deb] of Object.entries(debs).sort()) {
      const suite = deb.suite && bySuite.has(deb.suite) ? deb.suite : source.suites[0]!
      const filename = `pool/${component}/${name.startsWith('lib') ? name.slice(0, 4) : name[0]}/${name}/${name}_${deb.version.replace(/^\d+:/, '')}_${arch}.deb`
      const target = join(root, filename)
      if (!existsSync(target)) {
        const pkg = join(work, name)
        mkdirSync(join(pkg, 'DEBIAN'), { recursive: true })
        mkdirSync(join(pkg, 'usr/share/doc', name), { recursive: true })
        writeFileSync(
          join(pkg, 'usr/share/doc', name, 'README.stand-in'),
          `DEMO stand-in for ${name} ${deb.version}, made by astrago-airgap's scripts/demo; not the real package.\n`,
        )
        writeFileSync(
          join(pkg, 'DEBIAN/control'),
          [
            `Package: ${name}`,
            `Version: ${deb.version}`,
            `Architecture: ${arch}`,
            'Maintainer: astrago-airgap demo <demo@astrago.invalid>',
            ...(deb.priority ? [`Priority: ${deb.priority}`] : []),
            ...(deb.depends ? [`Depends: ${deb.depends}`] : []),
            `Description: DEMO stand-in for ${name}`,
            '',
          ].join('\n'),
        )
        mkdirSync(dirname(target), { recursive: true })
        execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', pkg, target], {
          stdio: 'ignore',
          env: { ...process.env, SOURCE_DATE_EPOCH: String(DATE.getTime() / 1000) },
        })
      }
      const bytes = readFileSync(target)
      bySuite
        .get(suite)!
        .push(
          [
            `Package: ${name}`,
            `Version: ${deb.version}`,
            `Architecture: ${arch}`,
            ...(deb.priority ? [`Priority: ${deb.priority}`] : []),
            ...(deb.depends ? [`Depends: ${deb.depends}`] : []),
            `Description: DEMO stand-in for ${name}`,
            `Filename: ${filename}`,
            `Size: ${bytes.length}`,
            `SHA256: ${sha256(bytes)}`,
          ].join('\n'),
        )
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  for (const [suite, stanzas] of bySuite) {
    // Every package in the first component; the others are there, empty.
    const files = source.components.flatMap((c) => {
      const packages = Buffer.from(c === component ? stanzas.map((s) => `${s}\n`).join('\n') : '')
      return [
        { path: `${c}/binary-${arch}/Packages`, data: packages },
        { path: `${c}/binary-${arch}/Packages.gz`, data: gzipSync(packages, { level: 9 }) },
      ]
    })
    const dists = join(root, 'dists', suite)
    for (const file of files) {
      mkdirSync(dirname(join(dists, file.path)), { recursive: true })
      writeFileSync(join(dists, file.path), file.data)
    }
    const release = [
      'Origin: astrago-airgap DEMO stand-in',
      'Label: DEMO',
      `Suite: ${suite}`,
      `Codename: ${suite}`,
      `Date: ${DATE.toUTCString().replace('GMT', 'UTC')}`,
      `Architectures: ${arch}`,
      `Components: ${source.components.join(' ')}`,
      'SHA256:',
      ...files.map((f) => ` ${sha256(f.data)} ${f.data.length} ${f.path}`),
      '',
    ].join('\n')
    writeFileSync(join(dists, 'Release'), release)
    writeFileSync(join(dists, 'InRelease'), await clearsign(key, release, DATE))
  }
  return Object.keys(debs).length
}
