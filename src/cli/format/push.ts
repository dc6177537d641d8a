import { formatBytes, formatDuration, formatRate } from '../../events/format.js'
import type { PushResult } from '../../push/push-result.js'

/** The text `push` prints for its result without --json: where to, what was sent, skipped or mounted, how fast. */
export function formatPushResult(result: PushResult): string {
  const where = result.prefix ? `${result.registry}/${result.prefix}` : result.registry
  return [
    `Pushed to ${where}: ${result.images} images, ${result.charts} charts${result.upToDate ? ` (${result.upToDate} already there)` : ''}`,
    `  ${result.blobsUploaded} blobs uploaded (${formatBytes(result.bytesUploaded)}), ${result.blobsMounted} mounted, ${result.blobsSkipped} already there; ${result.manifestsPushed} manifests`,
    `  in ${formatDuration(result.durationMs)}${result.bytesUploaded ? `, ${formatRate(result.bytesPerSecond)}` : ''}`,
  ].join('\n')
}
