import { readFile } from 'node:fs/promises'
import { AirgapError } from '../errors.js'
import { type EventSink, logEvent } from '../events/types.js'
import { HttpClient } from '../net/http.js'
import { type Credential, DefaultCredentialStore } from './docker-config.js'
import { RegistryClient } from './registry-client.js'

/**
 * Builds the HTTP client and registry client every command that talks to registries uses, from plain option values:
 * credentials given on the command line (before ~/.docker/config.json and its helpers), extra CA files, registries
 * spoken to over plain HTTP or without TLS verification, and mirrors. The caller closes `http` when done.
 */
export interface RegistryClientSetup {
  /** REGISTRY=URL (images) or URL-PREFIX=URL (charts, files). */
  mirrors?: Record<string, string>
  credentials?: Record<string, Credential>
  /** Registries (host or host:port) spoken to over plain HTTP, and hosts whose TLS certificate is not verified. */
  insecureRegistries?: string[]
  /** PEM files of CA certificates to trust (a site's Harbor, a corporate mirror). */
  caFiles?: string[]
  /** Parallel transfers the caller will run; sizes the connection pool. */
  concurrency?: number
  toolVersion: string
  sink: EventSink
}

export interface RegistryClientBundle {
  http: HttpClient
  registry: RegistryClient
}

export async function createRegistryClient(setup: RegistryClientSetup): Promise<RegistryClientBundle> {
  const registryMirrors: Record<string, string> = {}
  const urlMirrors: Record<string, string> = {}
  for (const [from, to] of Object.entries(setup.mirrors ?? {})) {
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
  for (const file of setup.caFiles ?? []) {
    try {
      ca.push(await readFile(file, 'utf8'))
    } catch (error) {
      throw new AirgapError('E_INPUT', `Cannot read the CA file ${file}: ${(error as Error).message}`)
    }
  }
  const http = new HttpClient({
    ca: ca.length ? ca : undefined,
    insecureHosts: setup.insecureRegistries,
    urlMirrors,
    connections: Math.max(8, setup.concurrency ?? 8),
    userAgent: `astrago-airgap/${setup.toolVersion}`,
    onRetry: ({ url, reason, delayMs }) =>
      setup.sink.emit({
        type: 'log',
        level: 'warn',
        code: 'W_RETRY',
        message: `${reason}; retrying ${url} in ${delayMs}ms`,
        data: { url, delayMs },
      }),
  })
  const registry = new RegistryClient({
    http,
    credentials: new DefaultCredentialStore(setup.credentials, undefined, (message) =>
      setup.sink.emit(logEvent('W_CREDENTIALS', message)),
    ),
    mirrors: registryMirrors,
    plainHttp: setup.insecureRegistries,
  })
  return { http, registry }
}
