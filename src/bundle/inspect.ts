import type { BundleMetadata } from './metadata.js'
import { BundleReader } from './reader.js'

/** What `inspect` shows: bundle.json, read without scanning the rest of the file. */
export interface InspectResult {
  path: string
  /** Size of the bundle file (all volumes). */
  size: number
  metadata: BundleMetadata
}

export async function inspectBundle(path: string): Promise<InspectResult> {
  const reader = await BundleReader.open(path, { scan: false })
  try {
    return { path, size: reader.size, metadata: reader.metadata }
  } finally {
    await reader.close()
  }
}
