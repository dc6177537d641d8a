/**
 * Delta bundles: `bundle --base` writes only what a site that already has the base lacks. The delta's bundle.json is
 * the complete inventory of the new version, plus the base's name, version and bundle.json digest; its tar leaves out
 * every member the base's inventory lists at the same path with the same sha256 (shared layers, unchanged charts,
 * packages and stage files). Readers open the delta with its base (reader.ts) and see the full bundle.
 *
 * The base is read as an inventory only: its bundle.json, from the bundle file, its first volume, an extracted folder
 * or a copy of bundle.json alone. Its digest pins everything the delta leaves out.
 */
import { readFile, stat } from 'node:fs/promises'
import { AirgapError } from '../errors.js'
import { sha256Digest } from '../oci/digest.js'
import type { BundleLock } from './bundle-lock.js'
import { BUNDLE_JSON } from './layout.js'
import { type BundleMetadata, serializeBundleJson } from './metadata.js'
import { bytesMember } from './plan-layout.js'
import { MAX_BUNDLE_JSON, parseMetadata } from './reader.js'
import { readBundleHead } from './sign-head.js'

export interface BaseInventory {
  /** What was given: a bundle, its first volume, a folder or a bundle.json. */
  path: string
  metadata: BundleMetadata
  /** sha256:<hex> of its bundle.json bytes. */
  bundleJson: string
}

/** The base's inventory, from a bundle (file, volumes or folder) or from its bundle.json alone. */
export async function readBaseInventory(path: string): Promise<BaseInventory> {
  let bytes: Buffer
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new AirgapError('E_INPUT', `The base ${path} cannot be read: ${error.code ?? error.message}.`, {
      hints: ['Give the earlier bundle (its file, first volume or folder) or a copy of its bundle.json.'],
      cause: error,
    })
  })
  if (info.isFile() && path.endsWith('.json')) {
    if (info.size > MAX_BUNDLE_JSON)
      throw new AirgapError(
        'E_INPUT',
        `The base ${path} is ${info.size} bytes: too large to be a bundle.json.`,
      )
    bytes = await readFile(path)
  } else {
    bytes = (await readBundleHead(path)).bundleJson
  }
  const metadata = parseMetadata(bytes, path)
  if (metadata.base) {
    throw new AirgapError(
      'E_INPUT',
      `The base ${path} is itself a delta bundle (on ${metadata.base.name} ${metadata.base.version}); a delta is made on a full bundle.`,
      {
        hints: ['Give the full bundle the site has, or build the delta on the full bundle of that version.'],
      },
    )
  }
  return { path, metadata, bundleJson: sha256Digest(bytes) }
}

/**
 * The lock of a delta: bundle.json names the base and keeps the full inventory; the members the base has (same path,
 * same sha256) are not written. Package signature checks run on the packages that are written; the others were
 * checked when the base was made. Must run before signing, which signs this bundle.json.
 */
export function deltaLock(lock: BundleLock, base: BaseInventory): BundleLock {
  const [first, ...rest] = lock.members
  if (first?.path !== BUNDLE_JSON) throw new Error(`the first member of a lock must be ${BUNDLE_JSON}`)
  const inBase = new Map(base.metadata.members.map((m) => [m.path, m.sha256]))
  const { format, name, version, ...others } = lock.metadata
  const metadata: BundleMetadata = {
    format,
    name,
    version,
    base: { name: base.metadata.name, version: base.metadata.version, bundleJson: base.bundleJson },
    ...others,
  }
  const kept = rest.filter((m) => inBase.get(m.path) !== m.sha256)
  const written = new Set(kept.map((m) => m.path))
  const signatureChecks = lock.signatureChecks
    .map((check) => ({
      ...check,
      packages: check.packages.filter((p) => written.has(`${check.folder}/${p.path}`)),
    }))
    .filter((check) => check.packages.length > 0)
  return {
    metadata,
    members: [bytesMember(BUNDLE_JSON, serializeBundleJson(metadata)), ...kept],
    signatureChecks,
  }
}

/**
 * The sha256 of the bundle.json the full bundle has: a full bundle's own; for a delta, its bundle.json without `base`,
 * which is byte for byte the full bundle's when both were signed by the same key (or neither). An install records
 * it, so the site that installed 1.1.0 from a delta and the one that installed the full 1.1.0 are at the same bundle.
 */
export function fullBundleDigest(metadata: BundleMetadata, bundleJson: Buffer): string {
  const { base, ...full } = metadata
  const bytes = base ? serializeBundleJson(full as BundleMetadata) : bundleJson
  return sha256Digest(bytes)
}
