import type { EventSink } from '../events/types.js'
import { createRegistryClient } from '../oci/create-registry-client.js'
import type { Credential } from '../oci/docker-config.js'
import { loadBundleSpec } from '../spec/load.js'
import { type CreateBundleResult, createBundle } from './create.js'

/** Everything `astrago-airgap bundle` takes, in plain values: the command maps its flags to this. */
export interface BundleFromDefinitionOptions {
  definition: string
  output?: string
  outputDir?: string
  platforms?: string[]
  /** REGISTRY=URL (images) or URL-PREFIX=URL (charts, files). */
  mirrors?: Record<string, string>
  credentials?: Record<string, Credential>
  insecureRegistries?: string[]
  caFiles?: string[]
  concurrency?: number
  splitSize?: number
  helm?: string
  chartValues?: Record<string, Record<string, unknown>>
  /** Where git chart sources are kept between runs (default ~/.cache/astrago-airgap/git). */
  gitCacheDir?: string
  signingKey?: string
  /** Sign bundle.json (default true). */
  sign?: boolean
  mirrorKeyrings?: Record<string, string>
  /** The installer to carry (see CreateBundleOptions.installer). */
  installer?: string | { directory: string }
  /** Write a delta bundle on this base (see CreateBundleOptions.base). */
  base?: string
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
}

export async function bundleFromDefinition(
  options: BundleFromDefinitionOptions,
): Promise<CreateBundleResult> {
  const spec = await loadBundleSpec(options.definition)
  if (options.platforms?.length) spec.platforms = options.platforms
  const { http, registry } = await createRegistryClient({
    mirrors: options.mirrors,
    credentials: options.credentials,
    insecureRegistries: options.insecureRegistries,
    caFiles: options.caFiles,
    concurrency: options.concurrency,
    toolVersion: options.toolVersion,
    sink: options.sink,
  })
  try {
    return await createBundle({
      spec,
      registry,
      http,
      output: options.output,
      outputDir: options.outputDir,
      splitSize: options.splitSize,
      concurrency: options.concurrency,
      helm: options.helm,
      chartValues: options.chartValues,
      // Git chart sources: URL-prefix mirrors as for chart repositories and files, --username credentials by host.
      urlMirrors: Object.fromEntries(
        Object.entries(options.mirrors ?? {}).filter(([from]) => from.includes('://')),
      ),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.gitCacheDir ? { gitCacheDir: options.gitCacheDir } : {}),
      signingKey: options.signingKey,
      ...(options.sign === false ? { sign: false } : {}),
      mirrorKeyrings: options.mirrorKeyrings,
      ...(options.installer !== undefined ? { installer: options.installer } : {}),
      ...(options.base ? { base: options.base } : {}),
      toolVersion: options.toolVersion,
      sink: options.sink,
      signal: options.signal,
    })
  } finally {
    await http.close()
  }
}
