import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as yaml from 'js-yaml'
import { Agent, type RequestInit, type Response, fetch as undiciFetch } from 'undici'
import { freePort, waitFor } from './net.js'
import { ManagedProcess } from './process.js'
import { createTlsMaterial, type TlsMaterial } from './tls.js'
import { findTool } from './tools.js'

/**
 * A real OCI registry for the tests: Debian's docker-registry (distribution 2.8) or distribution v3, on a free
 * loopback port with its own storage, optionally behind bcrypt htpasswd auth and TLS.
 */
export type RegistryFlavor = 'distribution-v2' | 'distribution-v3'

export interface RegistryOptions {
  flavor?: RegistryFlavor
  /** Require basic auth with this user (stored bcrypt-hashed, the only kind distribution accepts). */
  credentials?: { username: string; password: string }
  tls?: boolean
  /** Extra top-level config sections (for example `proxy` for a pull-through cache, or `auth` for token auth). */
  extraConfig?: Record<string, unknown>
  /**
   * Storage folder to use instead of a fresh one (kept on stop): seed a registry without auth, stop it, and serve
   * the same content again behind auth the harness cannot push through (token auth).
   */
  storageDir?: string
}

export interface TestRegistry {
  flavor: RegistryFlavor
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string
  /** host:port, as it appears in image references. */
  host: string
  credentials?: { username: string; password: string }
  tls?: TlsMaterial
  workDir: string
  stop(): Promise<void>
}

export const registryFlavors: RegistryFlavor[] = ['distribution-v2', 'distribution-v3']

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const flavor = options.flavor ?? 'distribution-v3'
  const binary = flavor === 'distribution-v2' ? findTool('docker-registry') : findTool('registry')
  const workDir = mkdtempSync(join(tmpdir(), `astrago-registry-`))
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const tls = options.tls ? createTlsMaterial(workDir, ['127.0.0.1', 'localhost']) : undefined

  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: options.storageDir ?? join(workDir, 'storage') },
      delete: { enabled: true },
    },
    http: {
      addr: host,
      secret: 'astrago-airgap-test-secret',
      ...(tls ? { tls: { certificate: tls.certFile, key: tls.keyFile } } : {}),
    },
    ...options.extraConfig,
  }
  if (options.credentials) {
    const htpasswdFile = join(workDir, 'htpasswd')
    const line = execFileSync(
      findTool('htpasswd'),
      ['-Bbn', options.credentials.username, options.credentials.password],
      { encoding: 'utf8' },
    )
    writeFileSync(htpasswdFile, `${line.trim()}\n`)
    config.auth = { htpasswd: { realm: 'astrago-test', path: htpasswdFile } }
  }
  const configFile = join(workDir, 'config.yml')
  writeFileSync(configFile, yaml.dump(config))

  const proc = new ManagedProcess(flavor, binary, ['serve', configFile], {
    env: { OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' },
    logFile: join(workDir, 'registry.log'),
  })
  const url = `${tls ? 'https' : 'http'}://${host}`
  const stop = async () => {
    await proc.stop()
    if (process.env.KEEP_HARNESS !== '1') rmSync(workDir, { recursive: true, force: true })
  }
  try {
    await waitFor(
      `${flavor} on ${url}`,
      async () => {
        proc.assertRunning()
        const res = await registryFetch({ url, tls }, '/v2/')
        await res.body?.cancel()
        return res.status === 200 || res.status === 401
      },
      { timeoutMs: 20_000, describe: () => proc.describe() },
    )
  } catch (error) {
    await stop()
    throw error
  }
  return { flavor, url, host, credentials: options.credentials, tls, workDir, stop }
}

/** fetch against a test registry, trusting its test CA. */
export async function registryFetch(
  registry: Pick<TestRegistry, 'url' | 'tls'>,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const dispatcher = registry.tls ? new Agent({ connect: { ca: registry.tls.caPem } }) : undefined
  return await undiciFetch(registry.url + path, { ...init, dispatcher })
}
