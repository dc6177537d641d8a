import type { BundleMetadata, LockedChart } from './metadata.js'
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
