import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs'
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { Parser, type ReadEntry } from 'tar'
import type { BundleMetadata, Member } from '../bundle/metadata.js'
import type { MemberLocation } from '../bundle/reader.js'
import { AirgapError } from '../errors.js'
import { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { findHelm } from './find-helm.js'

/**
 * The helm binary `install` runs, in this order:
 *   1. `--helm` (a path, or a command name on PATH), or else $ASTRAGO_HELM;
 *   2. the helm release tarball carried in the bundle for this machine's platform, unpacked once into
 *      <state>/bin/helm (reused while its sha256 matches what was unpacked from the same tarball);
 *   3. `helm` on PATH.
 * None of them is E_ENVIRONMENT.
 *
 * A bundle carries helm as an extra file (definition `files:`), in helm's release layout: a gzipped tar holding
 * `<os>-<arch>/helm`. The member is found by name under files/: `helm-v<version>-<os>-<arch>.tar.gz` (the name
 * get.helm.sh uses), or any `<os>-<arch>/helm.tar.gz` (e.g. files/bin/linux-amd64/helm.tar.gz). See
 * docs/bundle-definition.md.
 */
export interface ResolveHelmOptions {
  /** --helm */
  explicit?: string
  /** The opened bundle; without one, only --helm, $ASTRAGO_HELM and PATH are looked at. */
  reader?: HelmSource
  /** Folder the bundled helm is unpacked into (its bin/ subfolder). */
  stateDir: string
  env?: NodeJS.ProcessEnv
  platform?: string
  arch?: string
  sink: EventSink
}

/** What resolveHelm needs from a bundle: a BundleReader is one. */
export interface HelmSource {
  readonly metadata: Pick<BundleMetadata, 'members'>
  locate(path: string): MemberLocation | undefined
  openStream(location: MemberLocation): Readable
}

export interface ResolvedHelm {
  path: string
  from: 'flag' | 'ASTRAGO_HELM' | 'bundle' | 'PATH'
  /** The bundle member it was unpacked from. */
  member?: string
  /** True when an earlier unpacked copy was reused. */
  reused?: boolean
}

/** The largest helm binary accepted (helm 3 is about 55 MB). */
const MAX_HELM_BYTES = 512 << 20
/** Everything a helm tarball may unpack to (it holds helm, a README and a LICENSE). */
const MAX_UNPACKED_BYTES = 1 << 30

export async function resolveHelm(options: ResolveHelmOptions): Promise<ResolvedHelm> {
  const env = options.env ?? process.env
  if (options.explicit) return { path: findHelm(options.explicit, env), from: 'flag' }
  if (env.ASTRAGO_HELM) return { path: findHelm(undefined, env), from: 'ASTRAGO_HELM' }
  const os = options.platform ?? process.platform
  const arch = helmArch(options.arch ?? process.arch)
  if (options.reader) {
    const member = findBundledHelm(options.reader.metadata.members, os, arch)
    if (member) {
      const unpacked = await unpackBundledHelm({
        reader: options.reader,
        member,
        entry: `${os}-${arch}/helm`,
        binDir: join(options.stateDir, 'bin'),
        sink: options.sink,
      })
      return { path: unpacked.path, from: 'bundle', member: member.path, reused: unpacked.reused }
    }
  }
  try {
    return { path: findHelm(undefined, { ...env, ASTRAGO_HELM: undefined }), from: 'PATH' }
  } catch (error) {
    throw new AirgapError(
      'E_ENVIRONMENT',
      `helm is needed to install the bundle's charts, but the bundle carries none for ${os}-${arch} and there is none on PATH.`,
      {
        hints: [
          `Add helm's release tarball to the bundle definition's files (e.g. path: bin/helm-v3.16.2-${os}-${arch}.tar.gz from https://get.helm.sh),`,
          'or give its path with --helm or $ASTRAGO_HELM, or put helm on PATH.',
        ],
        cause: error,
      },
    )
  }
}

/** helm's name for a Node `process.arch`. */
export function helmArch(arch: string): string {
  return ({ x64: 'amd64', ia32: '386', ppc64: 'ppc64le' } as Record<string, string>)[arch] ?? arch
}

/**
 * The bundle member holding helm for `os`-`arch`: a file under files/ named helm-v<version>-<os>-<arch>.tar.gz, or
 * <os>-<arch>/helm.tar.gz. With several versions, the highest.
 */
export function findBundledHelm(members: Member[], os: string, arch: string): Member | undefined {
  const platform = `${escapeRegExp(os)}-${escapeRegExp(arch)}`
  const release = new RegExp(`(?:^|/)helm-v(\\d[^/]*)-${platform}\\.tar\\.gz$`)
  const plain = new RegExp(`(?:^|/)${platform}/helm\\.tar\\.gz$`)
  const found = members
    .filter((m) => m.path.startsWith('files/'))
    .map((m) => ({ member: m, version: release.exec(m.path)?.[1] ?? (plain.test(m.path) ? '' : undefined) }))
    .filter((c): c is { member: Member; version: string } => c.version !== undefined)
  found.sort((a, b) => compareVersions(b.version, a.version))
  return found[0]?.member
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true })
}

interface UnpackRecord {
  member: string
  /** sha256 of the tarball (as bundle.json lists it). */
  tarball: string
  /** sha256 of the unpacked binary. */
  sha256: string
}

/**
 * Unpacks only `entry` (a regular file, at most 512 MiB) of the tarball `member` into binDir/helm, mode 0755. The
 * tarball is hashed while it streams and must match bundle.json; links, devices and every other entry are never
 * written. A copy already unpacked from the same tarball whose sha256 still matches is reused.
 */
export async function unpackBundledHelm(options: {
  reader: HelmSource
  member: Member
  entry: string
  binDir: string
  sink: EventSink
}): Promise<{ path: string; reused: boolean }> {
  const { reader, member, binDir } = options
  const target = join(binDir, 'helm')
  const recordFile = join(binDir, 'helm.json')
  const record = await readRecord(recordFile)
  if (record && record.member === member.path && record.tarball === member.sha256) {
    const current = await hashFile(target).catch(() => undefined)
    if (current === record.sha256) return { path: target, reused: true }
  }
  const location = reader.locate(member.path)
  if (!location) {
    throw new AirgapError('E_INTEGRITY', `The bundle lists ${member.path} but does not hold it.`, {
      data: { member: member.path },
    })
  }
  const task = new Task(options.sink, 'helm.unpack', `Unpack helm from ${member.path}`, {
    data: { member: member.path },
  })
  return await task.run(async () => {
    await mkdir(binDir, { recursive: true })
    const partial = join(binDir, `.helm.${process.pid}.partial`)
    try {
      const sha256 = await extractEntry(reader.openStream(location), member, options.entry, partial)
      await chmod(partial, 0o755)
      await rename(partial, target)
      await writeFile(
        recordFile,
        `${JSON.stringify({ member: member.path, tarball: member.sha256, sha256 } satisfies UnpackRecord, null, 2)}\n`,
      )
      return { path: target, reused: false }
    } finally {
      await rm(partial, { force: true })
    }
  })
}

async function extractEntry(
  source: Readable,
  member: Member,
  entryName: string,
  into: string,
): Promise<string> {
  const tarballHash = createHash('sha256')
  const parser = new Parser({ strict: true })
  let failure: unknown
  let unpacked = 0
  let out: WriteStream | undefined
  let written: Promise<void> | undefined
  const fail = (error: unknown) => {
    failure ??= error
  }
  parser.on('entry', (entry: ReadEntry) => {
    unpacked += entry.size ?? 0
    const name = entry.path.replace(/^(\.\/)+/, '')
    if (unpacked > MAX_UNPACKED_BYTES) {
      fail(bad(member, `it unpacks to more than ${MAX_UNPACKED_BYTES} bytes`))
    } else if (name === entryName && !written && !failure) {
      if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
        fail(bad(member, `${entryName} in it is a ${entry.type}, not a regular file`))
      } else if ((entry.size ?? 0) > MAX_HELM_BYTES) {
        fail(bad(member, `${entryName} in it is ${entry.size} bytes, more than a helm binary can be`))
      } else {
        const file = createWriteStream(into, { mode: 0o700 })
        out = file
        written = new Promise<void>((resolve, reject) => {
          file.on('close', resolve)
          file.on('error', reject)
          entry.on('error', reject)
        })
        written.catch(fail)
        entry.pipe(file)
        return
      }
    }
    entry.resume()
  })
  const ended = new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve())
    parser.on('error', reject)
    parser.on('abort', reject)
  })
  ended.catch(fail)
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      tarballHash.update(chunk)
      if (failure) continue
      if (!parser.write(chunk)) await new Promise((resolve) => parser.once('drain', resolve))
    }
    if (!failure) {
      parser.end()
      await ended.catch(() => undefined)
    }
    if (!failure && written) await written.catch(() => undefined)
  } finally {
    if (failure || !written) out?.destroy()
  }
  if (tarballHash.digest('hex') !== member.sha256) {
    throw new AirgapError('E_INTEGRITY', `Member ${member.path} does not match its sha256.`, {
      hints: ['The bundle is damaged; copy it again from its source.'],
      data: { member: member.path },
    })
  }
  if (failure instanceof AirgapError) throw failure
  if (failure) throw bad(member, String((failure as Error).message ?? failure), failure)
  if (!written) throw bad(member, `it holds no ${entryName}`)
  const size = (await stat(into)).size
  if (size > MAX_HELM_BYTES) throw bad(member, `${entryName} in it is larger than a helm binary can be`)
  return await hashFile(into)
}

function bad(member: Member, why: string, cause?: unknown): AirgapError {
  return new AirgapError('E_INTEGRITY', `The helm tarball ${member.path} cannot be used: ${why}.`, {
    hints: [
      'Carry helm’s release tarball as published on https://get.helm.sh, or give a helm binary with --helm.',
    ],
    data: { member: member.path },
    cause,
  })
}

async function readRecord(path: string): Promise<UnpackRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(path, 'utf8')) as UnpackRecord
    return typeof record?.sha256 === 'string' ? record : undefined
  } catch {
    return undefined
  }
}

async function hashFile(path: string): Promise<string> {
  const info = await stat(path)
  if (!info.isFile()) throw new Error('not a file')
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}
