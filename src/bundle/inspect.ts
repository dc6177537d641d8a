import type { BundleMetadata, LockedChart } from './metadata.js'
import { BundleReader } from './reader.js'
import { readBundleHead } from './sign-head.js'
import { readSignaturePacket } from './sign-packet.js'

/**
 * What `inspect` shows: bundle.json, read without scanning the rest of the file, and who signed it: the issuer named
 * in bundle.json.sig (read from the signature packet; `verify --key` is what checks it).
 */
export interface InspectResult {
  path: string
  /** Size of the bundle file (all volumes). */
  size: number
  metadata: BundleMetadata
  /** Absent for an unsigned bundle. */
  signature?: InspectedSignature
}

export interface InspectedSignature {
  /** The issuer named in the signature: the signing key's fingerprint (or key ID); undefined if unreadable. */
  signer?: string
  /** When the signature says it was made (reproducible bundles: the key's creation time). */
  created?: string
  /** Whether that issuer is the key bundle.json names as its signer. */
  matchesBundleJson: boolean
}

export async function inspectBundle(path: string): Promise<InspectResult> {
  const reader = await BundleReader.open(path, { scan: false })
  let result: InspectResult
  try {
    result = { path, size: reader.size, metadata: reader.metadata }
  } finally {
    await reader.close()
  }
  const head = await readBundleHead(path)
  if (head.signature) {
    const packet = readSignaturePacket(head.signature)
    const claimed = result.metadata.signature?.fingerprint?.toUpperCase()
    result.signature = {
      ...(packet ? { signer: packet.issuer } : {}),
      ...(packet?.created ? { created: packet.created.toISOString() } : {}),
      matchesBundleJson:
        packet !== undefined &&
        claimed !== undefined &&
        (claimed === packet.issuer || claimed.endsWith(packet.issuer)),
    }
  }
  return result
}

/**
 * Where a chart came from, in one line: its chart repository; for git the URL, the path in it, the ref and the commit
 * it resolved to; for a local folder the folder and the sha256 of the archive packaged from it.
 */
export function describeChartOrigin(chart: LockedChart): string {
  const vendored = chart.dependencies?.length
    ? `; vendored ${chart.dependencies.map((d) => `${d.name} ${d.version}`).join(', ')}`
    : ''
  if (chart.git) {
    const { url, path, ref, commit } = chart.git
    const pinned = ref === commit ? `commit ${commit}` : `${ref} → commit ${commit}`
    return `git ${url}${path ? ` ${path}` : ''} at ${pinned}${vendored}`
  }
  if (chart.local) return `folder ${chart.local.path}, packaged sha256:${chart.sha256}${vendored}`
  return chart.repo ?? '?'
}
