import { formatBytes, formatDuration, formatRate } from '../../events/format.js'
import type { PullResult } from '../../publish/pull-bundle.js'

/** What `pull` prints for its result without --json: the file, its sha256, who signed it, and what was downloaded. */
export function formatPullResult(result: PullResult): string {
  const { signature } = result
  const signed = signature.signed
    ? `  signed by ${signature.fingerprint}${signature.trusted ? ', a trusted key (--key)' : ', matching bundle.json (not checked against a trusted key: give --key)'}`
    : '  not signed'
  const published =
    result.publishedSigner && result.publishedSigner !== signature.fingerprint
      ? ` (published as signed by ${result.publishedSigner})`
      : ''
  return [
    result.status === 'present'
      ? `${result.path} already holds ${result.name} ${result.version} (sha256 checked); nothing downloaded`
      : `Pulled ${result.name} ${result.version} into ${result.paths.join(', ')}`,
    `  sha256 ${result.bundleDigest.slice('sha256:'.length)} (${formatBytes(result.size)}), checked`,
    `${signed}${published}`,
    `  ${result.chunksDownloaded} of ${result.chunks} chunks downloaded (${formatBytes(result.bytesDownloaded)}${result.chunksResumed ? `, ${result.chunksResumed} continued` : ''}) in ${formatDuration(result.durationMs)}${result.bytesDownloaded ? `, ${formatRate(result.bytesPerSecond)}` : ''}`,
  ].join('\n')
}
