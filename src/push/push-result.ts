import type { PushStats } from './push-context.js'
import type { PushWork } from './push-plan.js'
import type { PushTarget } from './target.js'

/** What a push returns (the `--json` output of `push`, and part of `install --push-to`'s), and how it is made. */

export interface PushedArtifact {
  kind: 'image' | 'chart'
  /** The name in the bundle: docker.io/library/nginx:1.27, or charts/worker:0.1.0. */
  source: string
  /** Where it is now: harbor.site:443/astrago/docker.io/library/nginx:1.27 */
  reference: string
  digest: string
  /** pushed now, or already there (the tag pointed at the same digest). */
  status: 'pushed' | 'present'
}

export interface PushResult {
  registry: string
  prefix?: string
  images: number
  charts: number
  /** Images and charts whose tag already pointed at the bundle's digest: nothing of them was sent. */
  upToDate: number
  blobsUploaded: number
  /** Blobs the target repository already held (HEAD), for images that were not complete. */
  blobsSkipped: number
  /** Blobs linked from another repository of the registry instead of being uploaded again. */
  blobsMounted: number
  bytesUploaded: number
  manifestsPushed: number
  durationMs: number
  bytesPerSecond: number
  artifacts: PushedArtifact[]
}

/** The result of a finished push: its counts, its speed, and every artifact with where it is now. */
export function pushResult(
  target: PushTarget,
  works: PushWork[],
  stats: PushStats,
  durationMs: number,
): PushResult {
  return {
    registry: target.registry,
    ...(target.prefix ? { prefix: target.prefix } : {}),
    images: works.filter((w) => w.kind === 'image').length,
    charts: works.filter((w) => w.kind === 'chart').length,
    upToDate: works.filter((w) => w.present).length,
    ...stats,
    durationMs,
    bytesPerSecond: Math.round(stats.bytesUploaded / Math.max(durationMs / 1000, 0.001)),
    artifacts: works.map((w) => ({
      kind: w.kind,
      source: w.source,
      reference: `${target.registry}/${w.repo.repository}${w.reference.startsWith('sha256:') ? '@' : ':'}${w.reference}`,
      digest: w.digest,
      status: w.present ? 'present' : 'pushed',
    })),
  }
}
