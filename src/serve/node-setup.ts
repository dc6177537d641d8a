import { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import type { BundleMetadata } from '../bundle/metadata.js'
import { AirgapError } from '../errors.js'
import { parseImageReference, registryEndpointHost } from '../oci/reference.js'
import { siteRepository } from '../push/target.js'
import { type NodePackageRepository, renderPackageRepositorySetup } from './node-package-repositories.js'
import { renderNodeSetupScript } from './node-setup-script.js'
import type { PullRegistry } from './pull-registry.js'

/**
 * What a node needs to pull the bundle's images from the site server, served by the file server under /node-setup/:
 *
 *   node-setup.sh                 one idempotent POSIX sh script: CA into the system trust store, the hosts.toml
 *                                 files and CA copies under /etc/containerd/certs.d, containerd's config_path, a marker
 *   hosts/<upstream>/hosts.toml   containerd's registry host configuration for each upstream registry of the bundle
 *   ca.crt                        the site CA
 *   README.txt                    how to run it
 *
 * Each upstream registry (docker.io, nvcr.io, …) gets `certs.d/<upstream>/hosts.toml` sending its pulls to
 * `https://<site>/v2/<upstream>/<repository>/…` with `override_path = true` (containerd appends `?ns=<upstream>`
 * too), so the site registry always sees the full upstream name and `docker.io/nvidia/cuda` never meets
 * `nvcr.io/nvidia/cuda`. By default the site server is the `server` of the namespace, which containerd's docs/hosts.md
 * calls the way to make sure "only the mirror is utilised and the upstream not consulted": an image missing from the
 * bundle fails at once with the site's 404 instead of a dial timeout to a registry the site cannot reach. With
 * `upstreamFallback` the upstream stays the `server` and the site is a `[host]` tried first, for sites that can
 * reach some upstreams.
 *
 * Once `install --push-to` has copied the bundle into the site's own registry (Harbor, see pull-registry.ts), every
 * hosts.toml names that registry first (`[host."http://harbor:30002/v2/<project>/<upstream>"]`), the site server
 * staying the fallback while it runs; a plain-HTTP pull registry also gets a hosts.toml of its own, so images
 * relocated to it (`harbor:30002/library/docker.io/…`) are pulled over HTTP.
 */
export const CONTAINERD_CERTS_DIR = '/etc/containerd/certs.d'
/** File name of the site CA next to each hosts.toml, and in the system trust store. */
export const NODE_CA_FILE = 'astrago-airgap-ca.crt'
export const NODE_SETUP_SCRIPT = 'node-setup.sh'

/** path (relative to /node-setup/) → content. */
export type NodeSetupFiles = ReadonlyMap<string, string>

export interface NodeSetupOptions {
  /** The site server as nodes reach it: https://<host>:<port> (no path). */
  siteUrl: string
  /** The site CA (PEM). */
  caPem: string
  /** Upstream registry hosts to mirror (docker.io, nvcr.io, …); see upstreamRegistries(). */
  upstreams: string[]
  /** Named in the generated files' headers. */
  bundle?: { name: string; version: string }
  /** Keep the upstream as containerd's fallback `server` (default false: mirror-only). */
  upstreamFallback?: boolean
  /** The bundle's package repositories, configured on nodes they fit (see node-package-repositories.ts). */
  packageRepositories?: NodePackageRepository[]
  /** The registry the bundle was pushed into (install --push-to): nodes pull from it first. */
  pullRegistry?: PullRegistry
}

/** The upstream registry hosts of a bundle's images, sorted: docker.io, nvcr.io, quay.io, … */
export function upstreamRegistries(metadata: Pick<BundleMetadata, 'images'>): string[] {
  const hosts = new Set<string>()
  for (const image of metadata.images) hosts.add(parseImageReference(image.name).registry)
  return [...hosts].sort()
}

/** The API endpoint containerd would use for an upstream without any configuration (docker.io's is registry-1). */
export function upstreamEndpoint(upstream: string): string {
  return `https://${registryEndpointHost(upstream)}`
}

/** The site URL, checked and normalized: https, a host and an optional port, nothing else. */
export function normalizeSiteUrl(siteUrl: string): string {
  let url: URL
  try {
    url = new URL(siteUrl)
  } catch {
    throw new AirgapError(
      'E_INPUT',
      `"${siteUrl}" is not a URL; the site server address is https://<host>:<port>.`,
    )
  }
  const problems: string[] = []
  if (url.protocol !== 'https:') problems.push('it must use https')
  if (url.username || url.password) problems.push('it must not hold credentials')
  if (url.pathname !== '/' || url.search || url.hash)
    problems.push('it must not have a path, query or fragment')
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  if (!isIP(host) && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host)) {
    problems.push(`"${url.hostname}" is not a host name or IP address`)
  }
  if (problems.length) {
    throw new AirgapError(
      'E_INPUT',
      `The site server address "${siteUrl}" is not usable: ${problems.join('; ')}.`,
      {
        hints: [
          'Write it as https://<host>:<port>, e.g. https://10.0.0.5:8443 or https://registry.site.local:8443.',
        ],
      },
    )
  }
  return `https://${url.host}`
}

/**
 * An upstream registry host as it may appear in file names, TOML strings and the shell script: host names, IPv4
 * and a port only. Bundle metadata is input, so anything else is refused rather than quoted.
 */
export function checkUpstream(upstream: string): string {
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$/.test(upstream)) {
    throw new AirgapError('E_INPUT', `"${upstream}" is not a registry host this node setup can configure.`, {
      hints: [
        'Registry hosts are lower-case DNS names or IPv4 addresses with an optional port (quay.io, 10.0.0.9:5000).',
      ],
    })
  }
  return upstream
}

export interface HostsTomlOptions {
  siteUrl: string
  upstreamFallback?: boolean
  /** Tried before the site server: the registry the bundle was pushed into. */
  pullRegistry?: PullRegistry
  /** Header comment lines (without '# '). */
  header?: string[]
}

/** containerd's certs.d/<upstream>/hosts.toml for one upstream registry. */
export function renderHostsToml(upstream: string, options: HostsTomlOptions): string {
  checkUpstream(upstream)
  const site = normalizeSiteUrl(options.siteUrl)
  const mirror = `${site}/v2/${upstream}`
  const ca = `${CONTAINERD_CERTS_DIR}/${upstream}/${NODE_CA_FILE}`
  const header = (options.header ?? []).map((line) => `# ${line}`.trimEnd())
  if (options.pullRegistry) {
    const pull = normalizePullRegistry(options.pullRegistry)
    const pulled = `${pull.url}/v2/${siteRepository({ registry: '', prefix: pull.prefix }, upstream)}`
    const hosts = [`[host."${pulled}"]`, '  capabilities = ["pull", "resolve"]', '  override_path = true', '']
    if (options.upstreamFallback)
      return [
        ...header,
        `# ${upstream} pulls go to ${pull.url} (where the bundle was pushed) first, then the site registry; ${upstreamEndpoint(upstream)} is the fallback.`,
        `server = "${upstreamEndpoint(upstream)}"`,
        '',
        ...hosts,
        `[host."${mirror}"]`,
        '  capabilities = ["pull", "resolve"]',
        '  override_path = true',
        `  ca = "${ca}"`,
        '',
      ].join('\n')
    return [
      ...header,
      `# ${upstream} pulls go to ${pull.url} (where the bundle was pushed) first, then the site registry (mirror-only: ${upstreamEndpoint(upstream)} is never contacted).`,
      `server = "${mirror}"`,
      'capabilities = ["pull", "resolve"]',
      'override_path = true',
      `ca = "${ca}"`,
      '',
      ...hosts,
    ].join('\n')
  }
  if (options.upstreamFallback) {
    return [
      ...header,
      `# ${upstream} pulls go to the site registry first; ${upstreamEndpoint(upstream)} is the fallback.`,
      `server = "${upstreamEndpoint(upstream)}"`,
      '',
      `[host."${mirror}"]`,
      '  capabilities = ["pull", "resolve"]',
      '  override_path = true',
      `  ca = "${ca}"`,
      '',
    ].join('\n')
  }
  return [
    ...header,
    `# ${upstream} pulls go only to the site registry (mirror-only: ${upstreamEndpoint(upstream)} is never contacted).`,
    `server = "${mirror}"`,
    'capabilities = ["pull", "resolve"]',
    'override_path = true',
    `ca = "${ca}"`,
    '',
  ].join('\n')
}

/** Every file a node needs, as served under /node-setup/. */
export function createNodeSetupFiles(options: NodeSetupOptions): NodeSetupFiles {
  const siteUrl = normalizeSiteUrl(options.siteUrl)
  const caPem = canonicalCaPem(options.caPem)
  const upstreams = [...new Set(options.upstreams.map(checkUpstream))].sort()
  const fingerprint = new X509Certificate(caPem).fingerprint256
  // Bundle metadata is input: only plain characters reach comments of the script and the TOML files.
  const bundle = options.bundle
    ? `${options.bundle.name} ${options.bundle.version}`.replace(/[^\w.+ -]/g, '_')
    : undefined
  const header = [
    `Generated by astrago-airgap for the site server ${siteUrl}${bundle ? ` (bundle ${bundle})` : ''}.`,
  ]
  const pull = options.pullRegistry ? normalizePullRegistry(options.pullRegistry) : undefined
  const hosts = new Map<string, string>()
  for (const upstream of upstreams) {
    hosts.set(
      upstream,
      renderHostsToml(upstream, {
        siteUrl,
        upstreamFallback: options.upstreamFallback,
        pullRegistry: pull,
        header,
      }),
    )
  }
  // Images relocated to a plain-HTTP pull registry name it as their registry: containerd needs to be told HTTP.
  const pullHost = pull ? new URL(pull.url).host : undefined
  if (pull?.url.startsWith('http:') && pullHost && !hosts.has(pullHost))
    hosts.set(
      checkUpstream(pullHost),
      [
        ...header.map((line) => `# ${line}`),
        `# ${pullHost} is the registry the bundle was pushed into; it speaks plain HTTP.`,
        `server = "${pull.url}"`,
        'capabilities = ["pull", "resolve"]',
        '',
      ].join('\n'),
    )
  const script = renderNodeSetupScript({
    siteUrl,
    caPem,
    caFingerprint: fingerprint,
    caMark: caMarkLine(caPem),
    hosts,
    bundle,
    certsDir: CONTAINERD_CERTS_DIR,
    caFileName: NODE_CA_FILE,
    packageRepositories: renderPackageRepositorySetup(
      options.packageRepositories ?? [],
      siteUrl,
      new URL(siteUrl).hostname,
    ),
  })
  const files = new Map<string, string>()
  files.set(NODE_SETUP_SCRIPT, script)
  files.set('ca.crt', caPem)
  for (const [upstream, toml] of hosts) files.set(`hosts/${upstream}/hosts.toml`, toml)
  files.set('README.txt', renderReadme({ siteUrl, fingerprint, upstreams, bundle, pull }))
  return files
}

/** The pull registry checked: http(s)://host[:port] and a repository path, nothing else reaches the files. */
export function normalizePullRegistry(pull: PullRegistry): PullRegistry {
  const parsed = /^(https?):\/\/([^/]+)\/?$/.exec(pull.url)
  const prefixOk = pull.prefix === undefined || /^[a-z0-9]+(?:(?:\.|_|__|-+|\/)[a-z0-9]+)*$/.test(pull.prefix)
  if (!parsed || !prefixOk)
    throw new AirgapError(
      'E_INPUT',
      `The pull registry ${pull.url}${pull.prefix ? ` (prefix ${pull.prefix})` : ''} is not http(s)://host[:port] with a repository path.`,
      {
        hints: [
          'Run the install with --push-to again, e.g. --push-to http://10.0.0.11:30002 --push-prefix library.',
        ],
      },
    )
  checkUpstream(parsed[2]!)
  return { url: `${parsed[1]}://${parsed[2]}`, ...(pull.prefix ? { prefix: pull.prefix } : {}) }
}

/** The CA re-encoded from its DER bytes: one certificate, 64-column base64, a final newline. */
function canonicalCaPem(caPem: string): string {
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(caPem)
  } catch (error) {
    throw new AirgapError('E_INPUT', `The site CA is not a PEM certificate: ${(error as Error).message}`, {
      cause: error,
    })
  }
  const body = certificate.raw.toString('base64').replace(/.{1,64}/g, '$&\n')
  return `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n`
}

/**
 * A line of the CA's PEM that no other certificate has (the last full base64 line, inside the signature), so the
 * script can tell whether a trust bundle already holds the CA.
 */
function caMarkLine(caPem: string): string {
  const lines = caPem.trim().split('\n').slice(1, -1)
  const full = lines.filter((line) => line.length === 64)
  return (full[full.length - 1] ?? lines[lines.length - 1])!
}

function renderReadme(input: {
  siteUrl: string
  fingerprint: string
  upstreams: string[]
  bundle?: string
  pull?: PullRegistry
}): string {
  const { siteUrl, fingerprint, upstreams, bundle, pull } = input
  return `astrago-airgap node setup${bundle ? ` for bundle ${bundle}` : ''}
Site server: ${siteUrl}
Site CA SHA-256 fingerprint: ${fingerprint}

Run on every Kubernetes node, as root:

  1. Fetch the site CA and check its fingerprint against the one astrago-airgap printed when it started the
     server (this file comes from the same server, so it cannot vouch for itself):
       curl -fsSk ${siteUrl}/ca.crt -o /tmp/astrago-airgap-ca.crt
       openssl x509 -in /tmp/astrago-airgap-ca.crt -noout -fingerprint -sha256

  2. Run the setup script (idempotent: running it again changes nothing):
       curl -fsSL --cacert /tmp/astrago-airgap-ca.crt ${siteUrl}/node-setup/node-setup.sh | sh

     To see what it would write and run without changing anything:
       curl -fsSL --cacert /tmp/astrago-airgap-ca.crt ${siteUrl}/node-setup/node-setup.sh | sh -s -- --dry-run

What it does:
  - installs the site CA into the system trust store (update-ca-certificates or update-ca-trust);
  - writes ${CONTAINERD_CERTS_DIR}/<registry>/hosts.toml and ${NODE_CA_FILE} for ${upstreams.length ? upstreams.join(', ') : 'no registry (the bundle has no images)'}, so containerd pulls
    those images from ${pull ? `${pull.url}/v2/${pull.prefix ? `${pull.prefix}/` : ''}<registry>/… (where the bundle was pushed), then ` : ''}${siteUrl}/v2/<registry>/…;
  - sets config_path = "${CONTAINERD_CERTS_DIR}" in containerd's config (containerd 1.x and 2.x), keeping a copy of
    the original, and restarts containerd if it changed that file; a config it cannot safely edit is reported,
    not rewritten (exit status 3);
  - leaves a marker in /var/lib/astrago-airgap/node-setup.done.

Files here:
  node-setup.sh                  the script
  ca.crt                         the site CA
  hosts/<registry>/hosts.toml    containerd's configuration for each registry, if you prefer to place them yourself
`
}
