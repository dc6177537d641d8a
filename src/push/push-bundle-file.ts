import { BundleReader } from '../bundle/reader.js'
import type { EventSink } from '../events/types.js'
import { createRegistryClient } from '../oci/create-registry-client.js'
import type { Credential } from '../oci/docker-config.js'
import { pushBundle } from './push-bundle.js'
import type { PushResult } from './push-result.js'
import { parsePushTarget } from './target.js'

/** Everything `astrago-airgap push` takes, in plain values: the command maps its flags to this. */
export interface PushBundleFileOptions {
  /** The bundle file, or its first split volume. */
  bundle: string
  /** The base of a delta bundle: what the delta leaves out is pushed from it. */
  base?: string
  /** host[:port] of the site registry (a URL is accepted; http:// means plain HTTP). */
  registry: string
  prefix?: string
  credentials?: Record<string, Credential>
  insecureRegistries?: string[]
  caFiles?: string[]
  concurrency?: number
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
}

export async function pushBundleFile(options: PushBundleFileOptions): Promise<PushResult> {
  const { target, plainHttp } = parsePushTarget(options.registry, options.prefix)
  const reader = await BundleReader.open(options.bundle, options.base ? { base: options.base } : {})
  try {
    const { http, registry } = await createRegistryClient({
      credentials: options.credentials,
      insecureRegistries: [...(options.insecureRegistries ?? []), ...(plainHttp ? [target.registry] : [])],
      caFiles: options.caFiles,
      concurrency: options.concurrency,
      toolVersion: options.toolVersion,
      sink: options.sink,
    })
    try {
      return await pushBundle({
        reader,
        registry,
        target,
        concurrency: options.concurrency,
        sink: options.sink,
        signal: options.signal,
      })
    } finally {
      await http.close()
    }
  } finally {
    await reader.close()
  }
}
