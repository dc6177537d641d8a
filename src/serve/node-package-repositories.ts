import { AirgapError } from '../errors.js'

/**
 * The package-repository step of node-setup.sh: for each repository of the bundle that fits the node, the bundle's
 * repository key, the source (apt deb822 .sources, or a yum/dnf .repo file pointing at <site>/repo/<kind>/<name>), and
 * the site CA for the package manager's https client; with `--install-packages`, the bundle's requested packages are
 * installed from that repository alone. An apt repository fits a node whose /etc/os-release VERSION_CODENAME is its
 * suite's codename (jammy for jammy-updates); an rpm repository fits every rpm node; `--repository NAME` chooses
 * explicitly. Metadata is signed with the bundle key and checked by apt (Signed-By) and dnf (repo_gpgcheck); the
 * package files are covered by the checksums in that signed metadata.
 */
export interface NodePackageRepository {
  kind: 'apt' | 'rpm'
  name: string
  /** apt: the suite the repository was written under. */
  suite?: string
  architectures: string[]
  /** The repository key, ASCII-armoured. */
  keyArmored: string
  /** Package names to install with --install-packages. */
  packages: string[]
}

const EOF = 'ASTRAGO_AIRGAP_KEY_EOF'
const SAFE = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/

/** Where the node keeps the site CA for the package managers. */
export const NODE_PACKAGES_CA = '/etc/astrago-airgap/ca.crt'

/** A request as written in a definition (`socat (>= 1.7)`, `nfs-utils >= 2`, `conntrack:amd64`) → the package name. */
export function requestedPackageName(request: string): string {
  return request.trim().split(/[\s=(<>]/, 1)[0]!
}

function check(value: string, what: string, pattern = SAFE): string {
  if (!pattern.test(value))
    throw new AirgapError(
      'E_INPUT',
      `The bundle's package repositories name ${what} "${value}", which node-setup.sh cannot use.`,
    )
  return value
}

/** The body of setup_package_repositories() for these repositories ('' when there are none). */
export function renderPackageRepositorySetup(
  repositories: NodePackageRepository[],
  siteHost: string,
): string {
  if (repositories.length === 0) return ''
  check(siteHost.replace(/^\[|\]$/g, '').replace(/:/g, '-'), 'the site host')
  const keyFunctions: string[] = []
  const calls: string[] = []
  for (const [i, repository] of repositories.entries()) {
    check(repository.name, 'the repository')
    for (const arch of repository.architectures) check(arch, 'the architecture')
    for (const pkg of repository.packages) check(pkg, 'the package', /^[A-Za-z0-9][A-Za-z0-9._+~:-]*$/)
    if (repository.kind === 'apt') check(repository.suite ?? '', 'the suite')
    if (
      !repository.keyArmored.includes('BEGIN PGP PUBLIC KEY BLOCK') ||
      repository.keyArmored.split('\n').includes(EOF)
    )
      throw new AirgapError(
        'E_INPUT',
        `The key of the package repository ${repository.name} is not an armoured public key.`,
      )
    keyFunctions.push(
      `repository_key_${i}() {\ncat <<'${EOF}'\n${repository.keyArmored.replace(/\n$/, '')}\n${EOF}\n}`,
    )
    const codename = (repository.suite ?? '').replace(/-(updates|security|backports|proposed)$/, '')
    const args = [
      repository.kind,
      repository.name,
      repository.suite ?? '-',
      codename || '-',
      repository.architectures.join(' '),
      `repository_key_${i}`,
      repository.packages.join(' '),
    ]
    calls.push(`  package_repository ${args.map((a) => `'${a}'`).join(' ')}`)
  }
  return `${keyFunctions.join('\n')}
  SITE_HOST='${siteHost}'
  PR_FAMILY=
  if [ -d "$ROOT/etc/apt" ]; then
    PR_FAMILY=apt
  elif [ -d "$ROOT/etc/yum.repos.d" ]; then
    PR_FAMILY=rpm
  fi
  PR_CODENAME=$(sed -n 's/^VERSION_CODENAME=//p' "$ROOT/etc/os-release" 2>/dev/null | tr -d '"' | head -n 1)
  PR_COUNT=0
${calls.join('\n')}
  if [ "$PR_COUNT" = 0 ]; then
    say "no package repository of this bundle fits this node (package manager: \${PR_FAMILY:-none}, codename: \${PR_CODENAME:-none}); choose one with --repository NAME"
  fi`
}

/** The shell functions setup_package_repositories() calls; part of every script. */
export const PACKAGE_REPOSITORY_FUNCTIONS = `# package_repository KIND NAME SUITE CODENAME ARCHS KEYFN PACKAGES: configures one repository of the bundle when it
# fits this node (or was chosen with --repository), and installs PACKAGES from it with --install-packages.
package_repository() {
  if [ -n "$REPOSITORIES" ]; then
    case " $REPOSITORIES " in *" $2 "*) ;; *) return 0 ;; esac
  else
    [ "$1" = "$PR_FAMILY" ] || return 0
    if [ "$1" = apt ] && [ "$4" != "$PR_CODENAME" ]; then return 0; fi
  fi
  PR_COUNT=$((PR_COUNT + 1))
  PR_NAME=$2 PR_SUITE=$3 PR_ARCHS=$5
  ensure_file "${NODE_PACKAGES_CA}" 0644 ca_pem
  if [ "$1" = apt ]; then
    ensure_file "/etc/apt/keyrings/astrago-airgap-$2.asc" 0644 "$6"
    ensure_file "/etc/apt/sources.list.d/astrago-airgap-$2.sources" 0644 apt_sources
    ensure_file /etc/apt/apt.conf.d/60astrago-airgap 0644 apt_ca_config
  else
    ensure_file "/etc/pki/rpm-gpg/RPM-GPG-KEY-astrago-airgap-$2" 0644 "$6"
    ensure_file "/etc/yum.repos.d/astrago-airgap-$2.repo" 0644 yum_repo
  fi
  [ "$INSTALL_PACKAGES" = 1 ] && [ -n "$7" ] || return 0
  if [ -n "$ROOT" ]; then pr_in="chroot $ROOT"; else pr_in=; fi
  if [ "$1" = apt ]; then
    pr_only="-o Dir::Etc::SourceList=/etc/apt/sources.list.d/astrago-airgap-$2.sources -o Dir::Etc::SourceParts=-"
    # shellcheck disable=SC2086 # word splitting of the option lists is wanted
    run_cmd $pr_in env DEBIAN_FRONTEND=noninteractive apt-get -q $pr_only update
    # shellcheck disable=SC2086
    run_cmd $pr_in env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends $pr_only install $7
  else
    if command -v dnf >/dev/null 2>&1 || [ -n "$ROOT" ]; then pr_dnf=dnf; else pr_dnf=yum; fi
    # shellcheck disable=SC2086
    run_cmd $pr_in $pr_dnf -y --disablerepo='*' --enablerepo="astrago-airgap-$2" install $7
  fi
}

apt_sources() {
  printf '%s\\n' \\
    "# The bundle's package repository $PR_NAME, served by the site server (written by astrago-airgap node-setup.sh)." \\
    'Types: deb' \\
    "URIs: $SITE_URL/repo/apt/$PR_NAME" \\
    "Suites: $PR_SUITE" \\
    'Components: main' \\
    "Architectures: $PR_ARCHS" \\
    "Signed-By: /etc/apt/keyrings/astrago-airgap-$PR_NAME.asc"
}

apt_ca_config() {
  printf '%s\\n' \\
    '// The site server astrago-airgap serves package repositories from, and the CA its certificate is signed by.' \\
    "Acquire::https::$SITE_HOST::CaInfo \\"${NODE_PACKAGES_CA}\\";"
}

yum_repo() {
  printf '%s\\n' \\
    "# The bundle's package repository $PR_NAME, served by the site server (written by astrago-airgap node-setup.sh)." \\
    "# Its metadata is signed with the bundle key (repo_gpgcheck); the packages are covered by the signed checksums." \\
    "[astrago-airgap-$PR_NAME]" \\
    "name=astrago-airgap $PR_NAME" \\
    "baseurl=$SITE_URL/repo/rpm/$PR_NAME" \\
    'enabled=1' \\
    'repo_gpgcheck=1' \\
    'gpgcheck=0' \\
    "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-astrago-airgap-$PR_NAME" \\
    'sslcacert=${NODE_PACKAGES_CA}' \\
    'sslverify=1'
}
`
