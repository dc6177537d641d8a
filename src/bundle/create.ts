import { join, resolve } from 'node:path'
import { formatBytes } from '../events/format.js'
import { Task } from '../events/tasks.js'
import type { BundleLock } from './bundle-lock.js'
import { deltaLock, readBaseInventory } from './delta.js'
import { defaultBundleFileName } from './layout.js'
import type { LockedInstaller } from './metadata.js'
import { type ResolveBundleOptions, resolveBundle } from './resolve-bundle.js'
import { signLockWithKeyHome } from './sign-bundle.js'
import { writeBundle } from './write-bundle.js'

/**
 * `bundle`: a definition in, one verifiable bundle file out, in two steps. Resolve the definition to a lock
 * (resolve-bundle.ts: every chart, image, file and package pinned, every size known), then write the lock into the
 * bundle file (write-bundle.ts: plan the layout, fetch in parallel into planned offsets, with a journal so a rerun of
 * an interrupted bundle continues where it stopped). The result is byte-identical for the same definition and
 * upstream content.
 */
export interface CreateBundleOptions extends ResolveBundleOptions {
  /** Output file; default <dir>/<name>-<version>.tar */
  output?: string
  outputDir?: string
  /** Split into volumes of at most this many bytes (name.tar.000, .001, …). */
  splitSize?: number
  /**
   * Sign bundle.json (default true) with `signingKey`, or the default key that also signs the package repositories:
   * a detached OpenPGP signature, the member bundle.json.sig right after it.
   */
  sign?: boolean
  /**
   * Write a delta bundle on this base (a bundle file, first volume, folder or its bundle.json): only the members the
   * base lacks (delta.ts).
   */
  base?: string
}

export interface CreateBundleResult {
  path: string
  volumes: string[]
  name: string
  version: string
  size: number
  images: number
  charts: number
  files: number
  /** Package files over all package repositories. */
  packages: number
  /** The installer the bundle carries, if any. */
  installer?: LockedInstaller
  /** The fingerprint of the key that signed bundle.json (absent when unsigned). */
  signedBy?: string
  /** For a delta bundle: its base, and the members and bytes of the inventory left to the base. */
  base?: { name: string; version: string; members: number; bytes: number }
  blobs: number
  blobBytes: number
  dedupSavedBytes: number
  fetchedBytes: number
  reusedBytes: number
  resumed: boolean
  durationMs: number
  bytesPerSecond: number
}

export async function createBundle(options: CreateBundleOptions): Promise<CreateBundleResult> {
  const started = Date.now()
  const { spec, sink, signal } = options
  const root = new Task(sink, 'bundle', `Bundle ${spec.metadata.name} ${spec.metadata.version}`, {
    data: { name: spec.metadata.name, version: spec.metadata.version },
  })
  const base = options.base ? await readBaseInventory(options.base) : undefined
  const output = resolve(
    options.output ??
      join(
        options.outputDir ?? process.cwd(),
        defaultBundleFileName(spec.metadata.name, spec.metadata.version, base?.metadata.version),
      ),
  )
  try {
    const full = await resolveBundle(options, root)
    const resolved = base
      ? await root
          .child('bundle.delta', `Leave out what ${base.metadata.name} ${base.metadata.version} holds`, {
            data: { base: base.path },
          })
          .run(
            async () => deltaLock(full, base),
            (delta) => `${full.members.length - delta.members.length} members left to the base`,
          )
      : full
    const lock =
      options.sign === false
        ? resolved
        : await root.child('bundle.sign', 'Sign bundle.json').run(
            () => signLockWithKeyHome(resolved, options.signingKey, sink),
            (signed) =>
              signed.metadata.signature
                ? `signed by ${signed.metadata.signature.fingerprint}`
                : 'not signed (no gpg)',
          )
    const written = await writeBundle(
      lock,
      { output, splitSize: options.splitSize, concurrency: options.concurrency, sink, signal },
      root,
    )

    const { metadata } = lock
    const durationMs = Date.now() - started
    const result: CreateBundleResult = {
      path: written.paths[0]!,
      volumes: written.paths,
      name: spec.metadata.name,
      version: spec.metadata.version,
      size: written.size,
      images: metadata.images.length,
      charts: metadata.charts.length,
      files: metadata.files.length,
      packages: (metadata.packages ?? []).reduce((a, r) => a + r.packages.length, 0),
      ...(metadata.installer ? { installer: metadata.installer } : {}),
      ...(metadata.signature ? { signedBy: metadata.signature.fingerprint } : {}),
      ...(metadata.base ? { base: leftToBase(lock) } : {}),
      blobs: written.blobs,
      blobBytes: metadata.totals.blobBytes,
      dedupSavedBytes: Math.max(0, metadata.totals.imageBytesWithoutDedup - metadata.totals.blobBytes),
      fetchedBytes: written.fetchedBytes,
      reusedBytes: written.reusedBytes,
      resumed: written.resumed,
      durationMs,
      bytesPerSecond: Math.round(written.fetchedBytes / Math.max(durationMs / 1000, 0.001)),
    }
    root.end('done', `${result.path} (${formatBytes(result.size)})`)
    return result
  } catch (error) {
    root.end('failed', error instanceof Error ? error.message : String(error))
    throw error
  }
}

/** The base a delta was made on, with the members (and their bytes) of its inventory that the delta leaves to it. */
function leftToBase(lock: BundleLock): NonNullable<CreateBundleResult['base']> {
  const written = new Set(lock.members.map((m) => m.path))
  const left = lock.metadata.members.filter((m) => !written.has(m.path))
  return {
    name: lock.metadata.base!.name,
    version: lock.metadata.base!.version,
    members: left.length,
    bytes: left.reduce((a, m) => a + m.size, 0),
  }
}
