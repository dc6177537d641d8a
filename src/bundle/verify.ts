import { createHash } from 'node:crypto'
import { runPool } from '../concurrency/pool.js'
import { AirgapError } from '../errors.js'
import { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { BUNDLE_JSON, BUNDLE_SIGNATURE } from './layout.js'
import { BundleReader } from './reader.js'
import { readBundleHead } from './sign-head.js'
import { checkBundleSignature, type SignatureCheck } from './sign-verify.js'

/**
 * Checks a bundle against its inventory. First bundle.json's signature, on its raw bytes, before anything else is read
 * (sign-verify.ts: with `keys`, by one of them; without, at least consistent). Then `quick` (what `install` does by
 * default) proves every listed member is present, at its listed size, inside the file (this catches truncation and a
 * wrong index); `full` also rehashes every byte, in parallel, and names the first member that does not match.
 */
export interface VerifyOptions {
  path: string
  mode: 'quick' | 'full'
  /** Public key files: bundle.json must be signed by one of them. */
  keys?: string[]
  /** The base of a delta bundle: its members the delta leaves out are checked in the base. */
  base?: string
  concurrency?: number
  sink: EventSink
  signal?: AbortSignal
}

export interface VerifyResult {
  path: string
  name: string
  version: string
  members: number
  bytes: number
  mode: 'quick' | 'full'
  signature: SignatureCheck
  /** For a delta: its base, and how many members of the inventory were found (and checked) there. */
  base?: { path: string; name: string; version: string; members: number }
  durationMs: number
}

const READ_CHUNK = 4 << 20

export async function verifyBundle(options: VerifyOptions): Promise<VerifyResult> {
  const started = Date.now()
  const head = await readBundleHead(options.path)
  const signature = await checkBundleSignature(head, {
    path: options.path,
    sink: options.sink,
    ...(options.keys ? { keys: options.keys } : {}),
  })
  const reader = await BundleReader.open(options.path, options.base ? { base: options.base } : {})
  try {
    const { metadata } = reader
    // The reader read bundle.json again: it must be the very bytes whose signature was checked.
    const json = await reader.read(BUNDLE_JSON)
    if (!json.equals(head.bundleJson))
      throw new AirgapError(
        'E_INTEGRITY',
        `${BUNDLE_JSON} of ${options.path} changed while it was being verified.`,
      )
    const task = new Task(
      options.sink,
      'verify',
      `Verify ${metadata.name} ${metadata.version} (${options.mode})`,
      { data: { name: metadata.name, version: metadata.version, mode: options.mode } },
    )
    return await task.run(async () => {
      const listed = new Set(metadata.members.map((m) => m.path))
      const outside = new Set([BUNDLE_JSON, ...(signature.signed ? [BUNDLE_SIGNATURE] : [])])
      const extra = reader.members().filter((m) => !outside.has(m.path) && !listed.has(m.path))
      if (extra.length) {
        throw new AirgapError(
          'E_INTEGRITY',
          `The bundle holds ${extra[0]!.path}, which its inventory does not list.`,
          {
            data: { member: extra[0]!.path },
          },
        )
      }
      for (const member of metadata.members) {
        const location = reader.locate(member.path)
        if (!location) {
          throw new AirgapError(
            'E_INTEGRITY',
            `Member ${member.path} is listed in ${BUNDLE_JSON} but missing from the bundle${reader.base ? ` and from its base ${reader.base.path}` : ''}.`,
            {
              hints: [
                reader.base
                  ? 'The delta or its base is incomplete or was altered; copy them again from their source.'
                  : 'The bundle is incomplete or was altered; copy it again from its source.',
              ],
              data: { member: member.path },
            },
          )
        }
        if (location.size !== member.size) {
          throw new AirgapError(
            'E_INTEGRITY',
            `Member ${member.path} is ${location.size} bytes; ${BUNDLE_JSON} says ${member.size}.`,
            {
              data: { member: member.path },
            },
          )
        }
      }
      const bytes = metadata.members.reduce((a, m) => a + m.size, 0)
      if (options.mode === 'full') {
        const hashTask = task.child('verify.rehash', 'Rehash every member', { total: bytes, unit: 'bytes' })
        let done = 0
        const failures: string[] = []
        await hashTask.run(() =>
          runPool(
            metadata.members,
            options.concurrency ?? 4,
            async (member) => {
              const location = reader.locate(member.path)!
              const hash = createHash('sha256')
              const buffer = Buffer.alloc(Math.min(READ_CHUNK, Math.max(member.size, 1)))
              for (let at = 0; at < member.size; ) {
                const n = Math.min(buffer.length, member.size - at)
                await reader.volumes.read(location.offset + at, n, buffer)
                hash.update(buffer.subarray(0, n))
                at += n
                done += n
                hashTask.progress(done, bytes, 'bytes')
              }
              if (hash.digest('hex') !== member.sha256) failures.push(member.path)
            },
            options.signal,
          ),
        )
        if (failures.length) {
          const first = metadata.members.find((m) => failures.includes(m.path))!.path
          throw new AirgapError(
            'E_INTEGRITY',
            `Member ${first} does not match its sha256${failures.length > 1 ? ` (and ${failures.length - 1} more)` : ''}.`,
            {
              hints: ['The bundle is damaged; copy it again from its source.'],
              data: { member: first, bad: failures },
            },
          )
        }
      }
      return {
        path: options.path,
        name: metadata.name,
        version: metadata.version,
        members: metadata.members.length,
        bytes,
        mode: options.mode,
        signature,
        ...(reader.base
          ? {
              base: {
                path: reader.base.path,
                name: reader.base.metadata.name,
                version: reader.base.metadata.version,
                members: reader.base.members,
              },
            }
          : {}),
        durationMs: Date.now() - started,
      }
    })
  } finally {
    await reader.close()
  }
}
