import { AirgapError } from '../errors.js'
import { rpmRepoFile } from '../packages/rpm-repo-writer.js'

/**
 * The package-repository step of node-setup.sh: for each repository of the bundle that fits the node, the bundle's
 * repository key, the source (apt deb822 .sources, or a yum/dnf .repo file pointing at <site>/repo/<kind>/<name>), and
 * the site CA for the package manager's https client; with `--install-packages`, the bundle's requested packages are
 * installed from that repository alone. An apt repository fits a node whose /etc/os-release VERSION_CODENAME is its
 * suite's codename (jammy for jammy-updates); an rpm repository fits every rpm node; `--repository NAME` chooses
 * explicitly. Metadata is signed with the bundle key and checked by apt (Signed-By) and dnf (repo_gpgcheck); the
 * package files are covered by the checksums in that signed metadata. Every file is rendered here and embedded in the
 * script as a quoted here-document.
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
  /** Set up only where --repository names it (`nodes: chosen` in the definition). */
  chosenOnly?: boolean
}

const EOF = 'ASTRAGO_AIRGAP_REPO_EOF'
const SAFE = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/

/** Where the node keeps the site CA for the package managers. */
export const NODE_PACKAGES_CA = '/etc/astrago-airgap/ca.crt'

/** A request as written in a definition (`socat (>= 1.7)`, `nfs-utils >= 2`, `conntrack:amd64`) → the package name. */
export function requestedPackageName(request: string): string {
  return request.trim().split(/[\s=(<>]/, 1)[0]!
}

/** Where a repository's key and source go on a node. */
export function nodeRepositoryFiles(repository: Pick<NodePackageRepository, 'kind' | 'name'>): {
  key: string
  source: string
} {
  return repository.kind === 'apt'
    ? {
        key: `/etc/apt/keyrings/astrago-airgap-${repository.name}.asc`,
        source: `/etc/apt/sources.list.d/astrago-airgap-${repository.name}.sources`,
      }
    : {
        key: `/etc/pki/rpm-gpg/RPM-GPG-KEY-astrago-airgap-${repository.name}`,
        source: `/etc/yum.repos.d/astrago-airgap-${repository.name}.repo`,
      }
}

/** The source file of a repository as a node gets it (deb822 .sources, or a .repo section). */
export function nodeRepositorySource(repository: NodePackageRepository, siteUrl: string): string {
  const files = nodeRepositoryFiles(repository)
  const header = `The bundle's package repository ${repository.name}, served by the site server (written by astrago-airgap node-setup.sh).`
  const url = `${siteUrl}/repo/${repository.kind}/${repository.name}`
  if (repository.kind === 'apt') {
    return [
      `# ${header}`,
      'Types: deb',
      `URIs: ${url}`,
      `Suites: ${repository.suite}`,
      'Components: main',
      `Architectures: ${repository.architectures.join(' ')}`,
      `Signed-By: ${files.key}`,
      '',
    ].join('\n')
  }
  return rpmRepoFile({
    id: `astrago-airgap-${repository.name}`,
    name: `astrago-airgap ${repository.name}`,
    url,
    gpgkey: `file://${files.key}`,
    sslcacert: NODE_PACKAGES_CA,
    comment: [
      header,
      'Its metadata is signed with the bundle key (repo_gpgcheck); the packages are covered by the signed checksums.',
    ],
  })
}

function check(value: string, what: string, pattern = SAFE): string {
  if (!pattern.test(value))
    throw new AirgapError(
      'E_INPUT',
      `The bundle's package repositories name ${what} "${value}", which node-setup.sh cannot use.`,
    )
  return value
}

function hereDocument(name: string, text: string): string {
  if (text.split('\n').includes(EOF))
    throw new AirgapError('E_INPUT', `${name}: content collides with the here-document delimiter`)
  return `${name}() {\ncat <<'${EOF}'\n${text.replace(/\n$/, '')}\n${EOF}\n}`
}

/** The body of setup_package_repositories() for these repositories ('' when there are none). */
export function renderPackageRepositorySetup(
  repositories: NodePackageRepository[],
  siteUrl: string,
  siteHost: string,
): string {
  if (repositories.length === 0) return ''
  check(siteHost.replace(/^\[|\]$/g, '').replace(/:/g, '-'), 'the site host')
  const functions: string[] = [
    hereDocument(
      'apt_ca_config',
      [
        '// The site server astrago-airgap serves package repositories from, and the CA its certificate is signed by.',
        `Acquire::https::${siteHost}::CaInfo "${NODE_PACKAGES_CA}";`,
      ].join('\n'),
    ),
  ]
  const calls: string[] = []
  for (const [i, repository] of repositories.entries()) {
    check(repository.name, 'the repository')
    for (const arch of repository.architectures) check(arch, 'the architecture')
    for (const pkg of repository.packages) check(pkg, 'the package', /^[A-Za-z0-9][A-Za-z0-9._+~:-]*$/)
    if (repository.kind === 'apt') check(repository.suite ?? '', 'the suite')
    if (!repository.keyArmored.includes('BEGIN PGP PUBLIC KEY BLOCK'))
      throw new AirgapError(
        'E_INPUT',
        `The key of the package repository ${repository.name} is not an armoured public key.`,
      )
    functions.push(hereDocument(`repository_key_${i}`, repository.keyArmored))
    functions.push(hereDocument(`repository_source_${i}`, nodeRepositorySource(repository, siteUrl)))
    const files = nodeRepositoryFiles(repository)
    const codename = (repository.suite ?? '').replace(/-(updates|security|backports|proposed)$/, '')
    const args = [
      repository.chosenOnly ? `${repository.kind}:chosen` : repository.kind,
      repository.name,
      codename || '-',
      files.key,
      `repository_key_${i}`,
      files.source,
      `repository_source_${i}`,
      repository.packages.join(' '),
    ]
    calls.push(`  package_repository ${args.map((a) => `'${a}'`).join(' ')}`)
  }
  return `${functions.join('\n')}
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

/** The shell function setup_package_repositories() calls; part of every script. */
export const PACKAGE_REPOSITORY_FUNCTIONS = `# package_repository KIND NAME CODENAME KEYFILE KEYFN SOURCEFILE SOURCEFN PACKAGES: configures one repository of the
# bundle when it fits this node (or was chosen with --repository), and installs PACKAGES from it with
# --install-packages.
package_repository() {
  pr_kind=\${1%:chosen}
  if [ -n "$REPOSITORIES" ]; then
    case " $REPOSITORIES " in *" $2 "*) ;; *) return 0 ;; esac
  else
    # A repository meant for some nodes only (nodes: chosen) needs --repository.
    [ "$pr_kind" = "$1" ] || return 0
    [ "$1" = "$PR_FAMILY" ] || return 0
    if [ "$1" = apt ] && [ "$3" != "$PR_CODENAME" ]; then return 0; fi
  fi
  set -- "$pr_kind" "$2" "$3" "$4" "$5" "$6" "$7" "$8"
  PR_COUNT=$((PR_COUNT + 1))
  ensure_file "${NODE_PACKAGES_CA}" 0644 ca_pem
  ensure_file "$4" 0644 "$5"
  ensure_file "$6" 0644 "$7"
  [ "$1" = apt ] && ensure_file /etc/apt/apt.conf.d/60astrago-airgap 0644 apt_ca_config
  [ "$INSTALL_PACKAGES" = 1 ] && [ -n "$8" ] || return 0
  if [ -n "$ROOT" ]; then pr_in="chroot $ROOT"; else pr_in=; fi
  if [ "$1" = apt ]; then
    pr_only="-o Dir::Etc::SourceList=$6 -o Dir::Etc::SourceParts=-"
    # shellcheck disable=SC2086 # word splitting of the option lists is wanted
    run_cmd $pr_in env DEBIAN_FRONTEND=noninteractive apt-get -q $pr_only update
    # shellcheck disable=SC2086
    run_cmd $pr_in env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends $pr_only install $8
  else
    if command -v dnf >/dev/null 2>&1 || [ -n "$ROOT" ]; then pr_dnf=dnf; else pr_dnf=yum; fi
    # shellcheck disable=SC2086
    run_cmd $pr_in $pr_dnf -y --disablerepo='*' --enablerepo="astrago-airgap-$2" install $8
  fi
}
`
