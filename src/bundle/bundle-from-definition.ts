import { readFile } from 'node:fs/promises'
import { AirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'
import { HttpClient } from '../net/http.js'
import { type Credential, DefaultCredentialStore } from '../oci/docker-config.js'
import { RegistryClient } from '../oci/registry-client.js'
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
  toolVersion: string
  sink: EventSink
  signal?: AbortSignal
}

export async function bundleFromDefinition(
  options: BundleFromDefinitionOptions,
): Promise<CreateBundleResult> {
  const spec = await loadBundleSpec(options.definition)
  if (options.platforms?.length) spec.platforms = options.platforms
  const registryMirrors: Record<string, string> = {}
  const urlMirrors: Record<string, string> = {}
  for (const [from, to] of Object.entries(options.mirrors ?? {})) {
    try {
      new URL(to)
    } catch {
      throw new AirgapError('E_USAGE', `Mirror ${from}=${to}: "${to}" is not a URL.`, {
        hints: [
          'Write mirrors as docker.io=https://mirror.example:5000 or https://get.helm.sh=http://files.local/helm.',
        ],
      })
    }
    if (from.includes('://')) urlMirrors[from] = to
    else registryMirrors[from] = to
  }
  const ca: string[] = []
  for (const file of options.caFiles ?? []) {
    try {
      ca.push(await readFile(file, 'utf8'))
    } catch (error) {
      throw new AirgapError('E_INPUT', `Cannot read the CA file ${file}: ${(error as Error).message}`)
    }
  }
  const http = new HttpClient({
    ca: ca.length ? ca : undefined,
    insecureHosts: options.insecureRegistries,
    urlMirrors,
    connections: Math.max(8, options.concurrency ?? 8),
    userAgent: `astrago-airgap/${options.toolVersion}`,
    onRetry: ({ url, reason, delayMs }) =>
      options.sink.emit({
        type: 'log',
        level: 'warn',
        code: 'W_RETRY',
        message: `${reason}; retrying ${url} in ${delayMs}ms`,
      }),
  })
  try {
    const registry = new RegistryClient({
      http,
      credentials: new DefaultCredentialStore(options.credentials),
      mirrors: registryMirrors,
      plainHttp: options.insecureRegistries,
    })
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
      toolVersion: options.toolVersion,
      sink: options.sink,
      signal: options.signal,
    })
  } finally {
    await http.close()
  }
}
