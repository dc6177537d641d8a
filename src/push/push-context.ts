import type { BundleReader, MemberLocation } from '../bundle/reader.js'
import type { Semaphore } from '../concurrency/semaphore.js'
import type { EventSink } from '../events/types.js'
import type { RegistryClient } from '../oci/registry-client.js'
import type { BlobHolders } from './blob-holders.js'
import type { PushTarget } from './target.js'

/**
 * What the steps of one push share: the bundle, the registry and its target, the one limit on transfers, the stop
 * that the first failure pulls, and what the push has learnt and counted so far.
 */
export interface PushContext {
  reader: BundleReader
  client: RegistryClient
  target: PushTarget
  sink: EventSink
  /** Aborted by the caller, or by the first failure. */
  signal: AbortSignal
  /** Images worked on at once. */
  concurrency: number
  /** Bounds the transfers (blob uploads, mounts, checks) running at once. */
  limit: Semaphore
  /** Stops every transfer still running with this error, then throws it. */
  fail: (error: unknown) => never
  stats: PushStats
  holders: BlobHolders
  /** Where each blob lies in the bundle file, filled in as the manifests are read. */
  members: Map<string, MemberLocation>
}

/** The counters of the whole push, reported in its result. */
export interface PushStats {
  blobsUploaded: number
  blobsSkipped: number
  blobsMounted: number
  bytesUploaded: number
  manifestsPushed: number
}

/** The counters of one image or chart, for the line that ends its task. */
export interface ArtifactCounts {
  uploaded: number
  mounted: number
  bytes: number
  manifests: number
}
