/**
 * The signature check of `pull`: bundle.json's signature, checked by sign-verify.ts exactly as `verify` checks it
 * (with --key: a good signature by one of those keys; without: a signed bundle must match the key its bundle.json
 * names, an unsigned one passes with a warning). A bundle file starts with bundle.json and its signature, so with
 * --key the check runs as soon as the first chunks on disk hold them, before the other chunks are downloaded; it runs
 * (again) on the finished file before that takes its final name. A failure keeps the partial file and its journal: their bytes
 * match the published digests, they are only not trusted.
 */
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { BUNDLE_JSON } from '../bundle/layout.js'
import {
  type BundleHead,
  type HeadSource,
  readBundleHeadFrom,
  readBundleHeadPrefix,
} from '../bundle/sign-head.js'
import { checkBundleSignature, type SignatureCheck } from '../bundle/sign-verify.js'
import { AirgapError } from '../errors.js'
import type { Task } from '../events/tasks.js'
import { type EventSink, logEvent } from '../events/types.js'
import type { BundleChunk } from './bundle-artifact.js'

export interface PullSignatureOptions {
  /** Trusted public key files (--key); empty: only the consistency check. */
  keys: string[]
  sink: EventSink
  /** Names the bundle in messages: the reference pulled, or the file already there. */
  where: string
}

/** Refuses a --key file that cannot be read before anything is downloaded (the check itself reads it later). */
export async function checkKeyFiles(keys: string[]): Promise<void> {
  for (const key of keys) {
    await access(key, constants.R_OK).catch((error: NodeJS.ErrnoException) => {
      throw new AirgapError('E_INPUT', `cannot read the key ${key}: ${error.code ?? error.message}`, {
        hints: ['Give a public key file: `gpg --export FINGERPRINT > key.gpg` (or --armor … > key.asc).'],
      })
    })
  }
}

/**
 * Brings the chunks at the start of the file onto disk, in order, one at a time (`fetch` does nothing for a chunk
 * already there), until the bytes from the start hold bundle.json and its signature, then checks the signature.
 * Usually the first chunk is enough; a bundle.json larger than a chunk takes the chunks it spans.
 */
export async function checkSignatureFirst(
  source: HeadSource,
  chunks: BundleChunk[],
  fetch: (chunk: BundleChunk) => Promise<void>,
  parent: Task,
  options: PullSignatureOptions & { file: string },
): Promise<SignatureCheck> {
  let covered = 0
  let used = 0
  let head: BundleHead | undefined
  for (const chunk of chunks) {
    if (covered > 0) head = await readBundleHeadPrefix(source, covered, options.where)
    if (head) break
    await fetch(chunk)
    covered = chunk.offset + chunk.size
    used += 1
  }
  const found = head ?? (await readBundleHeadFrom(source, options.where))
  return await parent
    .child(
      'pull.signature',
      `Check the signature of ${BUNDLE_JSON} in the first ${used} of ${chunks.length} chunks`,
      { data: { file: options.file, keys: options.keys.length, chunks: used } },
    )
    .run(
      () => checkBundleSignature(found, { keys: options.keys, path: options.where, sink: options.sink }),
      describeSignature,
    )
}

/**
 * Checks the signature of a whole file: the finished partial file before it is renamed (`quiet`: its head was
 * checked on the first chunks already, so the notices of that check are not repeated), or a complete file already
 * in the output folder.
 */
export async function checkSignatureOf(
  source: HeadSource,
  chunks: number,
  parent: Task,
  options: PullSignatureOptions & { file: string; quiet: boolean },
): Promise<SignatureCheck> {
  const sink = options.quiet ? withoutSignatureNotices(options.sink) : options.sink
  return await parent
    .child('pull.signature', `Check the signature of ${BUNDLE_JSON} in ${options.file}`, {
      data: { file: options.file, keys: options.keys.length, chunks },
    })
    .run(async () => {
      const head = await readBundleHeadFrom(source, options.where)
      return await checkBundleSignature(head, { keys: options.keys, path: options.where, sink })
    }, describeSignature)
}

/** Warns when the signer recorded at publish time is not the one found (the annotation proves nothing either way). */
export function compareWithPublished(
  signature: SignatureCheck,
  published: string | undefined,
  sink: EventSink,
  file: string,
): void {
  if (published === undefined) return
  const found = signature.fingerprint ?? 'unsigned'
  const same = found === published || (found !== 'unsigned' && found.endsWith(published))
  if (same) return
  sink.emit(
    logEvent(
      'W_PULL_SIGNER_MISMATCH',
      `${file}: the manifest says the bundle was signed by ${published}, but its ${BUNDLE_JSON} is ${signature.signed ? `signed by ${found}` : 'not signed'}.`,
      { file, found, published },
    ),
  )
}

/**
 * A signature error of a pull, with what became of the bytes: `kept` says where they are and what to do. The error
 * keeps its code (and exit code), message and hints; its data gains `extra` (what was downloaded).
 */
export function withPullContext(error: unknown, kept: string, extra: Record<string, unknown>): unknown {
  if (!(error instanceof AirgapError) || !error.code.startsWith('E_SIGNATURE')) return error
  return new AirgapError(error.code, error.message, {
    hints: [...error.hints, kept],
    data: { ...error.data, ...extra },
    cause: error,
  })
}

export function describeSignature(signature: SignatureCheck): string {
  if (!signature.signed) return 'not signed'
  return signature.trusted
    ? `signed by ${signature.fingerprint}, a trusted key`
    : `signed by ${signature.fingerprint}, matching ${BUNDLE_JSON} (not checked against a trusted key: give --key)`
}

/** The sink without the notices a signature check gives on success (I_BUNDLE_SIGNED, W_BUNDLE_UNSIGNED). */
function withoutSignatureNotices(sink: EventSink): EventSink {
  return {
    emit: (event) => {
      if (event.type === 'log' && (event.code === 'I_BUNDLE_SIGNED' || event.code === 'W_BUNDLE_UNSIGNED'))
        return
      sink.emit(event)
    },
  }
}
