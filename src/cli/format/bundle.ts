import type { CreateBundleResult } from '../../bundle/create.js'
import { formatBytes, formatDuration, formatRate } from '../../events/format.js'

/** The text `bundle` prints for its result without --json: the volumes, what they hold, and what was downloaded. */
export function formatBundleResult(result: CreateBundleResult): string {
  return [
    `Bundle ${result.name} ${result.version}: ${result.volumes.join(', ')}`,
    `  ${result.images} images, ${result.charts} charts, ${result.files} files, ${result.packages} packages; ${formatBytes(result.size)}`,
    ...(result.installer
      ? [`  installer for ${result.installer.platform} (${formatBytes(result.installer.size)})`]
      : []),
    ...(result.base
      ? [
          `  a delta on ${result.base.name} ${result.base.version}: ${result.base.members} members (${formatBytes(result.base.bytes)}) are left to it; install with --base`,
        ]
      : []),
    result.signedBy ? `  bundle.json signed by ${result.signedBy}` : '  bundle.json not signed',
    `  ${result.blobs} unique blobs (${formatBytes(result.blobBytes)}); shared layers saved ${formatBytes(result.dedupSavedBytes)}`,
    `  downloaded ${formatBytes(result.fetchedBytes)}${result.reusedBytes ? ` (kept ${formatBytes(result.reusedBytes)} from the interrupted run)` : ''} in ${formatDuration(result.durationMs)}, ${formatRate(result.bytesPerSecond)}`,
  ].join('\n')
}
