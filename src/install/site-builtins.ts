import { AirgapError } from '../errors.js'
import { rpmRepoFile } from '../packages/rpm-repo-writer.js'
import type { NodePackageRepository } from '../serve/node-package-repositories.js'

/**
 * What the installer knows about the site and gives every stage as `${{ site.airgap.… }}` (read-only: a values file
 * cannot set `airgap`):
 *   server       https://<host>:<port> of the site server
 *   registry     <host>:<port>, the registry part of image references (install --relocate-images: the pushed-to
 *                <registry>/<prefix>, so charts that name images under it pull the pushed copies)
 *   caPem        the CA pods need to trust the server
 *   repoConfig   file name → content for the GPU Operator driver's `driver.repoConfig` ConfigMap: an apt list with
 *                a line per apt repository of the bundle (signed-by its key, mounted beside it), a .repo file per
 *                rpm repository, and the keys
 *   certConfig   file name → content for `driver.certConfig`: the CA, under the names the driver images read
 */
export const BUILTIN_VALUES_KEY = 'airgap'

export interface SiteBuiltins {
  server: string
  registry: string
  caPem: string
  repoConfig: Record<string, string>
  certConfig: Record<string, string>
}

/** Where the driver container sees the repo-config ConfigMap's files (the operator mounts them there). */
const APT_DIR = '/etc/apt/sources.list.d'
const YUM_KEY_DIR = '/etc/yum.repos.d'

export function siteBuiltins(input: {
  server: string
  caPem: string
  repositories: NodePackageRepository[]
}): SiteBuiltins {
  const url = new URL(input.server)
  const repoConfig: Record<string, string> = {}
  const aptLines: string[] = []
  for (const repository of input.repositories) {
    const key = `astrago-airgap-${repository.name}.asc`
    repoConfig[key] = repository.keyArmored
    if (repository.kind === 'apt') {
      aptLines.push(
        `deb [arch=${repository.architectures.join(',')} signed-by=${APT_DIR}/${key}] ${input.server}/repo/apt/${repository.name} ${repository.suite} main`,
      )
    } else {
      repoConfig[`astrago-airgap-${repository.name}.repo`] = rpmRepoFile({
        id: `astrago-airgap-${repository.name}`,
        name: `astrago-airgap ${repository.name}`,
        url: `${input.server}/repo/rpm/${repository.name}`,
        gpgkey: `file://${YUM_KEY_DIR}/${key}`,
      })
    }
  }
  if (aptLines.length)
    repoConfig['astrago-airgap.list'] =
      `# The bundle's package repositories on the site server (written by astrago-airgap install).\n${aptLines.join('\n')}\n`
  return {
    server: input.server,
    registry: url.host,
    caPem: input.caPem,
    repoConfig,
    // The operator mounts certConfig at /usr/local/share/ca-certificates on Ubuntu/Debian (update-ca-certificates
    // takes *.crt) and over /etc/pki/ca-trust/extracted/pem on RHEL-likes, where dnf reads tls-ca-bundle.pem.
    certConfig: { 'astrago-airgap-ca.crt': input.caPem, 'tls-ca-bundle.pem': input.caPem },
  }
}

/** The site values with the built-ins added; a values file that sets them itself is refused. */
export function withSiteBuiltins(
  siteValues: Record<string, unknown>,
  builtins: SiteBuiltins | undefined,
  source = 'the site values',
): Record<string, unknown> {
  if (Object.hasOwn(siteValues, BUILTIN_VALUES_KEY))
    throw new AirgapError(
      'E_INPUT',
      `${source} set "${BUILTIN_VALUES_KEY}", which the installer fills in itself.`,
      {
        hints: [
          `Remove "${BUILTIN_VALUES_KEY}" from the values file; stages read the site server's facts from it.`,
        ],
      },
    )
  return builtins ? { ...siteValues, [BUILTIN_VALUES_KEY]: builtins } : siteValues
}
