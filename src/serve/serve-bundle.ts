import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { networkInterfaces, hostname as osHostname, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { BUNDLE_JSON } from '../bundle/layout.js'
import { BundleReader } from '../bundle/reader.js'
import { verifyBundle } from '../bundle/verify.js'
import { AirgapError } from '../errors.js'
import { Task } from '../events/tasks.js'
import { type EventSink, logEvent } from '../events/types.js'
import { sha256Digest } from '../oci/digest.js'
import { REPOSITORY_KEY_ARMORED } from '../packages/repository.js'
import { createFileHandler } from './file-handler.js'
import { parseHtpasswd } from './htpasswd.js'
import { type NodePackageRepository, requestedPackageName } from './node-package-repositories.js'
import { createNodeSetupFiles, upstreamRegistries } from './node-setup.js'
import { PULL_REGISTRY_FILE, type PullRegistry, readPullRegistry } from './pull-registry.js'
import { createRegistryHandler } from './registry-handler.js'
import { type ServeWorkers, startServeWorkers, type WorkerCommand } from './serve-workers.js'
import { issueServerCertificate, loadOrCreateSiteCa, loadServerCertificate } from './site-ca.js'
import { type SiteServer, startSiteServer } from './site-server.js'
import { ensureSiteUsers, type SiteUser } from './site-users.js'

/**
 * Serves a bundle on the site: checks it, then one server with the OCI registry (/v2/) and the file server (charts,
 * files, package repositories, the CA, node setup), read straight out of the bundle file. State that must survive
 * restarts (the site CA, pushed images) lives in a state folder beside the bundle.
 */
export interface ServeBundleOptions {
  bundle: string
  /** The base of a delta bundle, served together with it as the full bundle. */
  base?: string
  host?: string
  port?: number
  /** Host names and IPs nodes use to reach this server (certificate SANs; the first is written into node setup). */
  advertise?: string[]
  /** Default: <bundle folder>/astrago-airgap-site */
  stateDir?: string
  /** Plain HTTP instead of TLS (tests, or a site that terminates TLS elsewhere). */
  insecure?: boolean
  /** A certificate and key of the site's own PKI instead of the generated site CA. */
  tlsCertFile?: string
  tlsKeyFile?: string
  htpasswdFile?: string
  /** Registry users to create on this site (random passwords, kept in the state folder). */
  users?: string[]
  anonymousPull?: boolean
  verify?: 'quick' | 'full'
  /**
   * More than one process on the port (serve-workers.ts): `count` workers answer the anonymous pulls of bundle blobs,
   * this process everything else. Absent or a count of 1: this process alone.
   */
  workers?: { count: number; command: WorkerCommand }
  sink: EventSink
  signal?: AbortSignal
}

export interface ServingBundle {
  name: string
  version: string
  /** How nodes reach the server, e.g. https://10.0.0.5:8443 */
  url: string
  /** host:port for image references and containerd. */
  registryHost: string
  listenUrl: string
  caFile?: string
  /** What nodes and pods trust the server with: the site CA, or the site's own certificate (absent when insecure). */
  caPem?: string
  caFingerprint?: string
  stateDir: string
  nodeSetupUrl: string
  upstreams: string[]
  /** Users created or kept by --user, with the file holding each password. */
  users: SiteUser[]
  /** The worker processes, with --workers. */
  workerPids?: number[]
  /** Serves node setup files that point containerd at this registry first (after install pushed the bundle there). */
  pullFrom(pullRegistry: PullRegistry): void
  stop(): Promise<void>
}

export async function serveBundle(options: ServeBundleOptions): Promise<ServingBundle> {
  const { sink } = options
  const base = options.base ? { base: options.base } : {}
  await verifyBundle({
    path: options.bundle,
    mode: options.verify ?? 'quick',
    ...base,
    sink,
    signal: options.signal,
  })
  const reader = await BundleReader.open(options.bundle, base)
  let server: SiteServer | undefined
  let workers: ServeWorkers | undefined
  let socketDir: string | undefined
  try {
    const stateDir = resolve(options.stateDir ?? defaultStateDir(options.bundle))
    // Port 0 (any free port) is chosen now: the node setup files name the port before the server starts.
    const port = options.port === 0 ? await anyFreePort(options.host ?? '0.0.0.0') : (options.port ?? 8443)
    const advertise = options.advertise?.length ? options.advertise : defaultAdvertise()
    const scheme = options.insecure ? 'http' : 'https'
    const url = `${scheme}://${formatHost(advertise[0]!)}:${port}`

    const task = new Task(sink, 'serve', `Serve ${reader.metadata.name} ${reader.metadata.version}`, {
      data: { name: reader.metadata.name, version: reader.metadata.version },
    })
    let tls: { certPem: string; keyPem: string } | undefined
    let caPem: string | undefined
    let caFile: string | undefined
    let caFingerprint: string | undefined
    if (!options.insecure) {
      if (options.tlsCertFile || options.tlsKeyFile) {
        if (!options.tlsCertFile || !options.tlsKeyFile) {
          throw new AirgapError('E_USAGE', '--tls-cert and --tls-key go together.')
        }
        const cert = loadServerCertificate({
          certPem: await readFile(options.tlsCertFile, 'utf8'),
          keyPem: await readFile(options.tlsKeyFile, 'utf8'),
        })
        tls = { certPem: cert.certPem, keyPem: cert.keyPem }
      } else {
        const ca = await loadOrCreateSiteCa(join(stateDir, 'ca'), {
          commonName: `astrago-airgap site CA (${reader.metadata.name})`,
        })
        const cert = await issueServerCertificate(ca, {
          hosts: [...new Set([...advertise, 'localhost', '127.0.0.1'])],
        })
        tls = { certPem: cert.certPem, keyPem: cert.keyPem }
        caPem = ca.certPem
        caFile = join(stateDir, 'ca', 'ca.crt')
        caFingerprint = ca.fingerprint
        if (ca.created)
          sink.emit({
            type: 'log',
            level: 'info',
            code: 'I_SITE_CA',
            message: `Created the site CA in ${caFile}`,
            data: { file: caFile },
          })
      }
    }
    const upstreams = upstreamRegistries(reader.metadata)
    const packageRepositories = await nodePackageRepositories(reader)
    // Nodes pull from where an earlier install pushed the bundle (Harbor) first: see pull-registry.ts.
    const makeNodeSetup = (pullRegistry: PullRegistry | undefined) =>
      options.insecure
        ? new Map<string, string>()
        : createNodeSetupFiles({
            siteUrl: url,
            caPem: caPem ?? tls!.certPem,
            upstreams,
            bundle: { name: reader.metadata.name, version: reader.metadata.version },
            packageRepositories,
            pullRegistry,
          })
    const recorded = await readPullRegistry(stateDir)
    const nodeSetup = new Map(makeNodeSetup(recorded))
    if (recorded && !options.insecure)
      sink.emit(
        logEvent(
          'I_PULL_REGISTRY',
          `Node setup points containerd at ${recorded.url}${recorded.prefix ? ` (${recorded.prefix})` : ''} first, where an install pushed the bundle (${join(stateDir, PULL_REGISTRY_FILE)}), then at this server.`,
          {
            url: recorded.url,
            ...(recorded.prefix ? { prefix: recorded.prefix } : {}),
            record: join(stateDir, PULL_REGISTRY_FILE),
          },
        ),
      )
    const siteUsers = options.users?.length ? await ensureSiteUsers(stateDir, options.users) : undefined
    const registry = createRegistryHandler({
      reader,
      overlayDir: join(stateDir, 'registry'),
      auth: {
        htpasswdFile: options.htpasswdFile ?? siteUsers?.htpasswdFile,
        users: options.htpasswdFile && siteUsers ? await usersOf(siteUsers.htpasswdFile) : undefined,
        anonymousPull: options.anonymousPull ?? true,
      },
      sink,
    })
    await registry.ready()
    if (options.insecure && (siteUsers || options.htpasswdFile)) {
      sink.emit(
        logEvent(
          'W_SERVE_CLEARTEXT',
          'Serving plain HTTP (--insecure) with registry users: their passwords cross the network in cleartext (Basic auth). Use TLS, or terminate TLS in front of this server.',
        ),
      )
    }
    const files = createFileHandler({ reader, caPem, nodeSetup })
    const host = options.host ?? '0.0.0.0'
    const withWorkers = options.workers && options.workers.count > 1 ? options.workers : undefined
    // With workers, this process serves on a unix socket in a private folder (a path short enough for one) what they
    // hand on to it, and they take the port.
    socketDir = withWorkers ? await mkdtemp(join(tmpdir(), 'astrago-airgap-serve-')) : undefined
    const primarySocket = socketDir && join(socketDir, 'primary.sock')
    server = await startSiteServer({
      host,
      port,
      ...(primarySocket ? { socketPath: primarySocket } : { tls }),
      handlers: [registry, files],
      sink,
    })
    if (withWorkers && primarySocket) {
      workers = await startServeWorkers({
        count: withWorkers.count,
        command: withWorkers.command,
        settings: {
          bundle: options.bundle,
          ...base,
          bundleJsonDigest: sha256Digest(await reader.read(BUNDLE_JSON)),
          host,
          port,
          ...(tls ? { tls } : {}),
          anonymousPull: options.anonymousPull ?? true,
          primarySocket,
        },
        sink,
      })
    }
    const listenPort = socketDir ? port : server.port
    const actualUrl = `${scheme}://${formatHost(advertise[0]!)}:${listenPort}`
    task.end('done', actualUrl)
    const openServer = server
    const openWorkers = workers
    const openSocketDir = socketDir
    return {
      name: reader.metadata.name,
      version: reader.metadata.version,
      url: actualUrl,
      registryHost: `${formatHost(advertise[0]!)}:${listenPort}`,
      listenUrl: socketDir ? `${scheme}://${formatHost(host)}:${port}` : server.listenUrl,
      ...(openWorkers ? { workerPids: openWorkers.pids() } : {}),
      caFile,
      ...(options.insecure ? {} : { caPem: caPem ?? tls!.certPem }),
      caFingerprint,
      stateDir,
      nodeSetupUrl: `${actualUrl}/node-setup/node-setup.sh`,
      pullFrom(pullRegistry: PullRegistry) {
        const files = makeNodeSetup(pullRegistry)
        nodeSetup.clear()
        for (const [path, text] of files) nodeSetup.set(path, text)
      },
      upstreams,
      users: siteUsers?.users ?? [],
      stop: async () => {
        await openWorkers?.stop()
        await openServer.close()
        await reader.close()
        if (openSocketDir) await rm(openSocketDir, { recursive: true, force: true })
      },
    }
  } catch (error) {
    await workers?.stop()
    await server?.close()
    await reader.close()
    if (socketDir) await rm(socketDir, { recursive: true, force: true })
    throw error
  }
}

/** The state folder when none is given: astrago-airgap-site beside the bundle file (or beside its extracted folder). */
export function defaultStateDir(bundle: string): string {
  return join(dirname(resolve(bundle)), 'astrago-airgap-site')
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** This machine's name and its non-loopback IPv4 addresses. */
function defaultAdvertise(): string[] {
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address)
  return [...addresses, osHostname().toLowerCase(), '127.0.0.1'].filter(
    (h, i, all) => h && all.indexOf(h) === i,
  )
}

/** user → bcrypt hash of an htpasswd file (when --htpasswd and --user are both given, both sets of users can push). */
async function usersOf(file: string): Promise<Record<string, string>> {
  const parsed = parseHtpasswd(await readFile(file, 'utf8'), file)
  return Object.fromEntries([...parsed.values()].map((u) => [u.user, u.hash]))
}

/** The bundle's package repositories as node-setup.sh configures them, with their keys read from the bundle. */
export async function nodePackageRepositories(reader: BundleReader): Promise<NodePackageRepository[]> {
  const out: NodePackageRepository[] = []
  for (const repository of reader.metadata.packages ?? []) {
    const key = await reader.read(`${repository.path}/${REPOSITORY_KEY_ARMORED}`)
    out.push({
      kind: repository.kind,
      name: repository.name,
      ...(repository.details.suite ? { suite: repository.details.suite } : {}),
      architectures: (repository.details.architectures ?? '').split(' ').filter(Boolean),
      keyArmored: key.toString('utf8'),
      packages: [...new Set(repository.requested.map(requestedPackageName))],
      ...(repository.details.nodes === 'chosen' ? { chosenOnly: true } : {}),
    })
  }
  return out
}

/** A port free on `host` right now (the kernel's choice). */
async function anyFreePort(host: string): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject)
    probe.listen(0, host, () => resolve())
  })
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}
