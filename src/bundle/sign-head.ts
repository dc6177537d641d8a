/**
 * The head of a bundle, read as raw bytes before anything in it is trusted: bundle.json (the first member) and, when
 * the bundle is signed, its signature bundle.json.sig (the member right after it). Works on a bundle file, its split
 * volumes, and a folder a bundle was extracted into. Nothing here parses bundle.json: the signature is checked on
 * these exact bytes first (sign-verify.ts).
 */
import { stat } from 'node:fs/promises'
import { AirgapError } from '../errors.js'
import { DirectorySource } from './directory-source.js'
import { BUNDLE_JSON, BUNDLE_SIGNATURE } from './layout.js'
import { MAX_BUNDLE_JSON } from './reader.js'
import { BLOCK, padTo512, parseHeader } from './tar.js'
import { type ByteSource, VolumeSet } from './volumes.js'

export interface BundleHead {
  /** bundle.json exactly as stored. */
  bundleJson: Buffer
  /** bundle.json.sig exactly as stored; absent when the bundle has no such member right after bundle.json. */
  signature?: Buffer
}

/** A detached signature is a few hundred bytes; anything near this is not one. */
const MAX_SIGNATURE = 64 << 10

export async function readBundleHead(path: string): Promise<BundleHead> {
  const isFolder = await stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  )
  return isFolder ? await readFolderHead(path) : await readFileHead(path)
}

async function readFileHead(path: string): Promise<BundleHead> {
  const volumes = await VolumeSet.openForRead(path)
  try {
    return await readBundleHeadFrom(volumes, path)
  } finally {
    await volumes.close()
  }
}

/** What the head is read from: the byte stream of a bundle (a file or its volumes, complete or being written). */
export type HeadSource = Pick<ByteSource, 'size' | 'read'>

/** The head of a bundle stored as `source` (a bundle file or its volumes); `where` names it in messages. */
export async function readBundleHeadFrom(source: HeadSource, where: string): Promise<BundleHead> {
  const head = await readHeadWithin(source, source.size, where)
  if (!head)
    throw new AirgapError('E_INTEGRITY', `${where} ends inside its first members.`, {
      hints: ['The bundle file is truncated: copy it again.'],
    })
  return head
}

/**
 * The head from the first `available` bytes of a bundle of `source.size` bytes, whose rest is not there yet (a pull
 * writes the file from its start): undefined when bundle.json or its signature runs past those bytes. Nothing past
 * them is read; a head that would not fit the whole bundle is the same error as on the finished file.
 */
export async function readBundleHeadPrefix(
  source: HeadSource,
  available: number,
  where: string,
): Promise<BundleHead | undefined> {
  return await readHeadWithin(source, Math.min(available, source.size), where)
}

/** Thrown by reads past the bytes available, to say "not yet" rather than "broken". */
class BeyondAvailable extends Error {}

async function readHeadWithin(
  source: HeadSource,
  available: number,
  where: string,
): Promise<BundleHead | undefined> {
  const bounded: HeadSource = {
    size: source.size,
    read: (position, length) => {
      if (position + length > available) throw new BeyondAvailable()
      return source.read(position, length)
    },
  }
  try {
    const first = await headerAt(bounded, 0)
    if (!first || first.path !== BUNDLE_JSON)
      throw new AirgapError(
        'E_INTEGRITY',
        `${where} is not an astrago-airgap bundle: its first member is not ${BUNDLE_JSON}.`,
      )
    if (first.size > MAX_BUNDLE_JSON)
      throw new AirgapError('E_INTEGRITY', `${BUNDLE_JSON} in ${where} is implausibly large.`)
    const bundleJson = await bounded.read(first.offset, first.size)
    const next = await headerAt(bounded, first.offset + first.size + padTo512(first.size))
    if (!next || next.path !== BUNDLE_SIGNATURE) return { bundleJson }
    if (next.size > MAX_SIGNATURE)
      throw new AirgapError(
        'E_SIGNATURE_INVALID',
        `${BUNDLE_SIGNATURE} in ${where} is too large to be a signature.`,
      )
    return { bundleJson, signature: await bounded.read(next.offset, next.size) }
  } catch (error) {
    if (error instanceof BeyondAvailable) return undefined
    throw error
  }
}

async function headerAt(
  source: HeadSource,
  at: number,
): Promise<{ path: string; offset: number; size: number } | undefined> {
  if (at + BLOCK > source.size)
    throw new AirgapError(
      'E_INTEGRITY',
      `The bundle ends at byte ${source.size}, inside its first members.`,
      {
        hints: ['The bundle file is truncated: copy it again.'],
      },
    )
  const header = await parseHeader(
    await source.read(at, BLOCK),
    (offset, length) => source.read(offset, length),
    at,
  )
  if (!header) return undefined
  const location = { path: header.path, offset: at + header.headerSize, size: header.size }
  if (location.offset + location.size > source.size)
    throw new AirgapError(
      'E_INTEGRITY',
      `The bundle is truncated: member ${location.path} runs past its end.`,
      {
        hints: ['Copy the bundle again (all volumes), then run `astrago-airgap verify`.'],
      },
    )
  return location
}

async function readFolderHead(path: string): Promise<BundleHead> {
  let source: DirectorySource
  try {
    source = await DirectorySource.open(path, [BUNDLE_JSON, BUNDLE_SIGNATURE], { required: [BUNDLE_JSON] })
  } catch (error) {
    if (error instanceof AirgapError && (error.cause as { code?: string } | undefined)?.code === 'ENOENT')
      throw new AirgapError(
        'E_INPUT',
        `${path} is a folder without ${BUNDLE_JSON}: not an extracted bundle.`,
        {
          hints: [
            'Give the bundle .tar file, its first volume (.000), or the folder it was extracted into with tar -xf.',
          ],
        },
      )
    throw error
  }
  try {
    const json = source.members.find((m) => m.path === BUNDLE_JSON)!
    if (json.size > MAX_BUNDLE_JSON)
      throw new AirgapError('E_INTEGRITY', `${BUNDLE_JSON} in ${path} is implausibly large.`)
    const bundleJson = await source.read(json.offset, json.size)
    const sig = source.members.find((m) => m.path === BUNDLE_SIGNATURE)
    if (!sig) return { bundleJson }
    if (sig.size > MAX_SIGNATURE)
      throw new AirgapError(
        'E_SIGNATURE_INVALID',
        `${BUNDLE_SIGNATURE} in ${path} is too large to be a signature.`,
      )
    return { bundleJson, signature: await source.read(sig.offset, sig.size) }
  } finally {
    await source.close()
  }
}
