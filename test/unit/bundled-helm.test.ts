import { createHash } from 'node:crypto'
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { create } from 'tar'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BUNDLE_FORMAT, type Member } from '../../src/bundle/metadata.js'
import { BundleReader } from '../../src/bundle/reader.js'
import { AirgapError } from '../../src/errors.js'
import type { EventSink } from '../../src/events/types.js'
import { findBundledHelm, helmArch, resolveHelm } from '../../src/helm/bundled-helm.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const sink: EventSink = { emit: () => undefined }
const HELM = Buffer.from('#!/bin/sh\necho fake helm\n')
const TARBALL = 'files/bin/helm-v3.21.4-linux-amd64.tar.gz'

describe('bundled helm', () => {
  let work: string
  let n = 0

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'astrago-bundled-helm-'))
  })
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  /** A helm release tarball built from `layout` (relative path → content, or {symlink}/{hardlink} to another entry). */
  const tarball = async (layout: Record<string, Buffer | { symlink: string } | { hardlink: string }>) => {
    const src = join(work, `src-${++n}`)
    for (const [path, content] of Object.entries(layout)) {
      const file = join(src, path)
      mkdirSync(dirname(file), { recursive: true })
      if (Buffer.isBuffer(content)) writeFileSync(file, content, { mode: 0o755 })
      else if ('symlink' in content) symlinkSync(content.symlink, file)
      else linkSync(join(src, content.hardlink), file)
    }
    const out = join(work, `helm-${n}.tar.gz`)
    await create({ gzip: true, cwd: src, file: out, portable: true }, Object.keys(layout))
    return readFileSync(out)
  }

  /** An extracted bundle folder holding `files`, opened with the real reader. */
  const bundle = async (files: Record<string, Buffer>, listed: Record<string, string> = {}) => {
    const dir = join(work, `bundle-${++n}`)
    const members: Member[] = []
    for (const [path, bytes] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true })
      writeFileSync(join(dir, path), bytes)
      members.push({ path, size: bytes.length, sha256: listed[path] ?? sha256(bytes) })
    }
    writeFileSync(
      join(dir, 'bundle.json'),
      JSON.stringify({ format: BUNDLE_FORMAT, name: 't', version: '1', members }),
    )
    return await BundleReader.open(dir)
  }

  const member = (path: string): Member => ({ path, size: 1, sha256: 'x' })

  it('finds helm by its release name or <os>-<arch>/helm.tar.gz under files/, the highest version first', () => {
    const members = [
      member('files/bin/helm-v3.9.0-linux-amd64.tar.gz'),
      member('files/bin/helm-v3.16.2-linux-amd64.tar.gz'),
      member('files/bin/helm-v3.17.0-linux-arm64.tar.gz'),
      member('charts/helm-v9.0.0-linux-amd64.tar.gz'),
    ]
    expect(findBundledHelm(members, 'linux', 'amd64')?.path).toBe('files/bin/helm-v3.16.2-linux-amd64.tar.gz')
    expect(findBundledHelm(members, 'linux', 'arm64')?.path).toBe('files/bin/helm-v3.17.0-linux-arm64.tar.gz')
    expect(findBundledHelm(members, 'linux', 's390x')).toBeUndefined()
    expect(findBundledHelm([member('files/bin/linux-amd64/helm.tar.gz')], 'linux', 'amd64')?.path).toBe(
      'files/bin/linux-amd64/helm.tar.gz',
    )
    expect(findBundledHelm([member('files/helm.tar.gz')], 'linux', 'amd64')).toBeUndefined()
    expect(helmArch('x64')).toBe('amd64')
    expect(helmArch('arm64')).toBe('arm64')
  })

  it('unpacks only <os>-<arch>/helm into <state>/bin/helm (0755), then reuses it while its sha256 matches', async () => {
    const tgz = await tarball({
      'linux-amd64/helm': HELM,
      'linux-amd64/README.md': Buffer.from('readme'),
      'linux-amd64/LICENSE': Buffer.from('license'),
    })
    const reader = await bundle({ [TARBALL]: tgz })
    const stateDir = join(work, 'state')
    try {
      const env = { PATH: '' }
      const first = await resolveHelm({ reader, stateDir, env, platform: 'linux', arch: 'x64', sink })
      expect(first).toMatchObject({
        from: 'bundle',
        member: TARBALL,
        reused: false,
        path: join(stateDir, 'bin', 'helm'),
      })
      expect(readFileSync(first.path)).toEqual(HELM)
      expect(statSync(first.path).mode & 0o777).toBe(0o755)
      expect(statSync(join(stateDir, 'bin')).isDirectory()).toBe(true)
      expect(() => statSync(join(stateDir, 'bin', 'README.md'))).toThrow()
      const again = await resolveHelm({ reader, stateDir, env, platform: 'linux', arch: 'x64', sink })
      expect(again.reused).toBe(true)
      // A changed binary is replaced by a fresh copy.
      writeFileSync(first.path, 'tampered')
      const fixed = await resolveHelm({ reader, stateDir, env, platform: 'linux', arch: 'x64', sink })
      expect(fixed.reused).toBe(false)
      expect(readFileSync(first.path)).toEqual(HELM)
    } finally {
      await reader.close()
    }
  })

  it('--helm wins, then $ASTRAGO_HELM; PATH is the fallback; none at all is E_ENVIRONMENT', async () => {
    const tgz = await tarball({ 'linux-amd64/helm': HELM })
    const withHelm = await bundle({ [TARBALL]: tgz })
    const without = await bundle({ 'files/other.bin': Buffer.from('x') })
    const bin = join(work, 'path-bin')
    mkdirSync(bin)
    writeFileSync(join(bin, 'helm'), HELM)
    chmodSync(join(bin, 'helm'), 0o755)
    const stateDir = join(work, 'state-order')
    const common = { stateDir, platform: 'linux', arch: 'x64', sink }
    try {
      const flag = await resolveHelm({
        ...common,
        reader: withHelm,
        explicit: join(bin, 'helm'),
        env: { PATH: '' },
      })
      expect(flag).toEqual({ path: join(bin, 'helm'), from: 'flag' })
      const fromEnv = await resolveHelm({
        ...common,
        reader: withHelm,
        env: { PATH: '', ASTRAGO_HELM: join(bin, 'helm') },
      })
      expect(fromEnv.from).toBe('ASTRAGO_HELM')
      const bundled = await resolveHelm({ ...common, reader: withHelm, env: { PATH: bin } })
      expect(bundled.from).toBe('bundle')
      const onPath = await resolveHelm({ ...common, reader: without, env: { PATH: bin } })
      expect(onPath).toEqual({ path: join(bin, 'helm'), from: 'PATH' })
      const none = await resolveHelm({ ...common, reader: without, env: { PATH: '' } }).catch(
        (e: unknown) => e,
      )
      expect(none).toBeInstanceOf(AirgapError)
      expect((none as AirgapError).code).toBe('E_ENVIRONMENT')
      expect((none as AirgapError).hints.join(' ')).toContain('--helm')
    } finally {
      await withHelm.close()
      await without.close()
    }
  })

  it('refuses a tarball whose helm is a link, that lacks helm, or that does not match its sha256', async () => {
    const cases: [string, Buffer, Record<string, string>?][] = [
      ['symlink', await tarball({ 'linux-amd64/helm': { symlink: '/etc/passwd' } })],
      [
        'hardlink',
        await tarball({
          'linux-amd64/README.md': HELM,
          'linux-amd64/helm': { hardlink: 'linux-amd64/README.md' },
        }),
      ],
      ['missing', await tarball({ 'linux-arm64/helm': HELM })],
      ['sha256', await tarball({ 'linux-amd64/helm': HELM }), { [TARBALL]: '0'.repeat(64) }],
      ['not gzip', Buffer.from('not a tarball at all, just text')],
    ]
    for (const [name, tgz, listed] of cases) {
      const reader = await bundle({ [TARBALL]: tgz }, listed)
      const stateDir = join(work, `state-${name}`)
      try {
        const error = await resolveHelm({
          reader,
          stateDir,
          env: { PATH: '' },
          platform: 'linux',
          arch: 'x64',
          sink,
        }).catch((e: unknown) => e)
        expect(error, name).toBeInstanceOf(AirgapError)
        expect((error as AirgapError).code, name).toBe('E_INTEGRITY')
        expect((error as AirgapError).message, name).toContain(TARBALL)
        expect(() => statSync(join(stateDir, 'bin', 'helm')), name).toThrow()
      } finally {
        await reader.close()
      }
    }
  })
})
