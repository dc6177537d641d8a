/**
 * The node setup script: one POSIX sh file (dash, busybox ash and bash run it) with everything it writes embedded, so
 * a node needs nothing but sh, awk and the usual coreutils. Every step asks "is it already so?" first: a second run
 * reports nothing to change and touches no file. `--dry-run` prints every file it would write (with its content) and
 * every command it would run, and changes nothing.
 *
 * All values put into the script are checked by the caller (node-setup.ts): host names, an https URL and a PEM
 * certificate, so nothing here needs shell quoting beyond single quotes and quoted here-documents.
 */
export interface NodeSetupScriptInput {
  siteUrl: string
  caPem: string
  caFingerprint: string
  /** A line of the CA's PEM, to find the CA in a trust bundle. */
  caMark: string
  /** upstream → hosts.toml content. */
  hosts: ReadonlyMap<string, string>
  bundle?: string
  certsDir: string
  caFileName: string
  /**
   * Body of setup_package_repositories(): shell lines that install the package repository key and the apt/yum
   * source lines for $SITE_URL/repo/…, using ensure_file PATH MODE PRODUCER and run_cmd like the other steps.
   */
  packageRepositories?: string
}

import { PACKAGE_REPOSITORY_FUNCTIONS } from './node-package-repositories.js'

const EOF = 'ASTRAGO_AIRGAP_EOF'

export function renderNodeSetupScript(input: NodeSetupScriptInput): string {
  const upstreams = [...input.hosts.keys()]
  for (const value of [input.siteUrl, input.caMark, input.certsDir, input.caFileName, ...upstreams]) {
    if (/['\\\s$`"]/.test(value)) throw new Error(`unsafe value for the node setup script: ${value}`)
  }
  for (const text of [input.caPem, ...input.hosts.values()]) {
    if (text.split('\n').includes(EOF)) throw new Error('content collides with the here-document delimiter')
  }
  const hostsFunctions = upstreams
    .map(
      (upstream, i) => `hosts_toml_${i}() {
cat <<'${EOF}'
${input.hosts.get(upstream)!.replace(/\n$/, '')}
${EOF}
}`,
    )
    .join('\n\n')
  const hostsCalls = upstreams
    .map((upstream, i) => `  configure_upstream '${upstream}' hosts_toml_${i}`)
    .join('\n')

  return `#!/bin/sh
# astrago-airgap node setup for the site server ${input.siteUrl}${input.bundle ? ` (bundle ${input.bundle})` : ''}.
# Site CA SHA-256 fingerprint: ${input.caFingerprint}
#
# Run as root on every Kubernetes node; running it again changes nothing:
#   curl -fsSL --cacert astrago-airgap-ca.crt ${input.siteUrl}/node-setup/node-setup.sh | sh
#   sh node-setup.sh --dry-run      print what would be written and run; change nothing
#   sh node-setup.sh --install-packages   also install the bundle's packages from its package repository
#   sh node-setup.sh --repository NAME    configure this package repository of the bundle (repeatable); by default
#                                  the one whose suite matches this node's codename (apt), or every rpm repository
#
# It installs the site CA into the system trust store, writes containerd's hosts.toml (and a CA copy) for every
# upstream registry of the bundle under ${input.certsDir}, makes sure containerd's config_path points there, and
# leaves a marker in /var/lib/astrago-airgap/node-setup.done.
#
# Environment:
#   ASTRAGO_ROOT=/dir              work under /dir instead of / (image builds, tests); the running system is left
#                                  alone (no systemctl)
#   ASTRAGO_CONTAINERD_CONFIG=...  containerd's config file (default /etc/containerd/config.toml)
#   ASTRAGO_CONTAINERD_VERSION=N   containerd's major version (1 or 2) when \`containerd --version\` cannot tell
#   ASTRAGO_NO_RESTART=1           never restart containerd, only say that it is needed
#
# Exit status: 0 done (or nothing to do), 1 failed, 2 bad usage, 3 something needs attention (see the ! lines).
set -eu
# update-ca-certificates, update-ca-trust and systemctl live in sbin, which sudo or su may leave out of PATH.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
export PATH

SITE_URL='${input.siteUrl}'
CERTS_D='${input.certsDir}'
CA_NAME='${input.caFileName}'
CA_MARK='${input.caMark}'
CA_SHA256='${input.caFingerprint}'
UPSTREAMS='${upstreams.join(' ')}'
MARKER=/var/lib/astrago-airgap/node-setup.done

ROOT=\${ASTRAGO_ROOT:-}
ROOT=\${ROOT%/}
CONTAINERD_CONFIG=\${ASTRAGO_CONTAINERD_CONFIG:-/etc/containerd/config.toml}
DRY_RUN=0
INSTALL_PACKAGES=0
REPOSITORIES=
CHANGES=0
ATTENTION=0
FILE_CHANGED=0

usage() {
  echo "usage: node-setup.sh [--dry-run] [--install-packages] [--repository NAME]..."
  echo "  Sets this node up to pull images from $SITE_URL (see the comments at the top of the script)."
}

while [ $# -gt 0 ]; do
  case $1 in
    -n | --dry-run) DRY_RUN=1 ;;
    --install-packages) INSTALL_PACKAGES=1 ;;
    --repository=*) REPOSITORIES="$REPOSITORIES \${1#--repository=}" ;;
    --repository)
      [ $# -gt 1 ] || { echo "node-setup.sh: --repository needs a name" >&2; exit 2; }
      shift
      REPOSITORIES="$REPOSITORIES $1"
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "node-setup.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

say() { printf '%s\\n' "$*"; }
die() { printf 'node-setup.sh: %s\\n' "$*" >&2; exit 1; }
attention() {
  ATTENTION=$((ATTENTION + 1))
  printf '  ! %s\\n' "$*"
}

# The site CA.
ca_pem() {
cat <<'${EOF}'
${input.caPem.replace(/\n$/, '')}
${EOF}
}

# ensure_file PATH MODE PRODUCER [SUMMARY]: makes ROOT/PATH hold exactly what the function PRODUCER prints, with mode
# MODE. Sets FILE_CHANGED to 1 when it (would) change the file, 0 when the file already is so. A dry run prints the
# content, or SUMMARY when given.
ensure_file() {
  ef_target=$ROOT$1
  ef_want=$("$3"; printf x)
  FILE_CHANGED=0
  if [ -f "$ef_target" ]; then
    ef_have=$(cat "$ef_target"; printf x)
    if [ "$ef_have" = "$ef_want" ]; then
      # shellcheck disable=SC2012 # one named file: ls -l is the POSIX way to read its mode
      ef_mode=$(ls -lnL "$ef_target" | awk '{ print substr($1, 1, 10) }')
      if [ "$ef_mode" = "$(mode_string "$2")" ]; then
        return 0
      fi
    fi
  fi
  FILE_CHANGED=1
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then
    if [ -f "$ef_target" ]; then ef_verb='replace'; else ef_verb='write'; fi
    if [ -n "\${4:-}" ]; then
      say "would $ef_verb $1 (mode $2): $4"
    else
      say "would $ef_verb $1 (mode $2):"
      printf '%s' "\${ef_want%x}" | sed 's/^/    | /'
    fi
    return 0
  fi
  mkdir -p "$(dirname "$ef_target")" || die "cannot create the folder of $ef_target"
  ef_tmp="$ef_target.astrago-airgap.$$"
  printf '%s' "\${ef_want%x}" >"$ef_tmp" || die "cannot write $ef_tmp"
  chmod "$2" "$ef_tmp" || die "cannot chmod $ef_tmp"
  mv -f "$ef_tmp" "$ef_target" || die "cannot write $ef_target"
  say "wrote $1"
}

# ls -l's mode string for an octal mode (0644 → -rw-r--r--), to compare modes with POSIX tools only.
mode_string() {
  echo "$1" | awk '{
    m = substr($1, length($1) - 2); s = "-"
    for (i = 1; i <= 3; i++) {
      d = substr(m, i, 1) + 0
      s = s (d >= 4 ? "r" : "-"); d = d % 4
      s = s (d >= 2 ? "w" : "-"); d = d % 2
      s = s (d >= 1 ? "x" : "-")
    }
    print s
  }'
}

# run_cmd COMMAND...: runs a command that changes the system (or, with --dry-run, says it would).
run_cmd() {
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then
    say "would run: $*"
    return 0
  fi
  say "run: $*"
  rc_out=$("$@" 2>&1) || { printf '%s\\n' "$rc_out" | sed 's/^/    /' >&2; die "$1 failed"; }
  [ -z "$rc_out" ] || printf '%s\\n' "$rc_out" | sed 's/^/    /'
}

# backup_once PATH: keeps the first version of a file we are about to change, as PATH.astrago-airgap.orig.
backup_once() {
  if [ -f "$ROOT$1" ] && [ ! -e "$ROOT$1.astrago-airgap.orig" ]; then
    if [ "$DRY_RUN" = 1 ]; then
      say "would keep a copy of $1 as $1.astrago-airgap.orig"
    else
      cp -p "$ROOT$1" "$ROOT$1.astrago-airgap.orig" || die "cannot back up $ROOT$1"
      say "kept a copy of $1 as $1.astrago-airgap.orig"
    fi
  fi
}

# 1. The system trust store.
install_ca_trust() {
  if [ -d /etc/pki/ca-trust/source/anchors ] && command -v update-ca-trust >/dev/null 2>&1; then
    anchor=/etc/pki/ca-trust/source/anchors/$CA_NAME # RHEL, Rocky, Alma, Fedora
    trust_bundle=/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem
    refresh='update-ca-trust extract'
  elif [ -d /etc/pki/trust/anchors ] && command -v update-ca-certificates >/dev/null 2>&1; then
    anchor=/etc/pki/trust/anchors/$CA_NAME # SUSE
    trust_bundle=/var/lib/ca-certificates/ca-bundle.pem
    refresh=update-ca-certificates
  elif command -v update-ca-certificates >/dev/null 2>&1; then
    anchor=/usr/local/share/ca-certificates/$CA_NAME # Debian, Ubuntu
    trust_bundle=/etc/ssl/certs/ca-certificates.crt
    refresh=debian
  else
    attention "neither update-ca-certificates nor update-ca-trust is installed: the site CA is not in the system trust store (containerd still trusts it through $CERTS_D)"
    return 0
  fi
  ensure_file "$anchor" 0644 ca_pem
  if [ "$FILE_CHANGED" = 0 ] && grep -qF "$CA_MARK" "$ROOT$trust_bundle" 2>/dev/null; then
    return 0
  fi
  if [ "$refresh" = debian ]; then
    if [ -z "$ROOT" ]; then
      run_cmd update-ca-certificates
    else
      [ "$DRY_RUN" = 1 ] || mkdir -p "$ROOT/etc/ssl/certs" || die "cannot create $ROOT/etc/ssl/certs"
      run_cmd update-ca-certificates --certsconf /dev/null --certsdir "$ROOT/usr/share/ca-certificates" \\
        --localcertsdir "$ROOT/usr/local/share/ca-certificates" --etccertsdir "$ROOT/etc/ssl/certs" \\
        --hooksdir "$ROOT/etc/ca-certificates/update.d"
    fi
  elif [ -z "$ROOT" ]; then
    # shellcheck disable=SC2086
    run_cmd $refresh
  else
    say "skipped under ASTRAGO_ROOT: $refresh (it only updates the running system)"
  fi
}

# 2. containerd's hosts.toml and CA copy for one upstream registry.
configure_upstream() {
  cu_dir=$CERTS_D/$1
  if [ -f "$ROOT$cu_dir/hosts.toml" ] && ! grep -q 'Generated by astrago-airgap' "$ROOT$cu_dir/hosts.toml"; then
    backup_once "$cu_dir/hosts.toml"
  fi
  ensure_file "$cu_dir/$CA_NAME" 0644 ca_pem "the site CA"
  ensure_file "$cu_dir/hosts.toml" 0644 "$2"
}

${hostsFunctions}

configure_upstreams() {
${hostsCalls || '  :'}
}

# 3. containerd's config_path. The registry section is [plugins."io.containerd.cri.v1.images".registry] in a
# version 3 config (containerd 2.x) and [plugins."io.containerd.grpc.v1.cri".registry] in a version 2 config
# (containerd 1.x; 2.x migrates it). The config is edited only where its shape is understood: an empty config_path
# is set, a missing one added to the section, a missing section appended. Anything else is reported, not rewritten.
containerd_major() {
  if [ -n "\${ASTRAGO_CONTAINERD_VERSION:-}" ]; then
    echo "\${ASTRAGO_CONTAINERD_VERSION%%.*}"
  elif command -v containerd >/dev/null 2>&1; then
    # "containerd containerd.io 1.7.27 …", "containerd github.com/containerd/containerd/v2 v2.1.4 …"
    containerd --version 2>/dev/null | awk '{ v = $3; sub(/^v/, "", v); split(v, p, "."); print p[1]; exit }'
  fi
}

# Prints "STATE LINE VALUE" for the config file given as $1 and containerd major version $2:
#   ok - -            config_path already is $CERTS_D
#   empty - -         the file holds nothing but comments: write a new one
#   set N V           config_path on line N is empty: set it (V: the config version, 2 or 3)
#   insert N V        the registry section starts on line N and has no config_path: add it
#   append - V        there is no registry section: append one
#   version N V       the config's version (V) has no registry section this script knows
#   mirrors N -       the deprecated registry.mirrors (line N) is set: containerd refuses config_path with it
#   foreign N VALUE   config_path on line N is VALUE: someone chose it; not overwritten
#   unknown N -       config_path is set in a form this script does not parse (dotted keys, inline tables)
analyse_containerd_config() {
  awk -v want="$CERTS_D" -v major="$2" '
    function norm(s) { sub(/[ \\t]*#.*$/, "", s); gsub(/[ \\t]/, "", s); gsub(/\\047/, "\\"", s); return s }
    function value(s) {
      sub(/^[^=]*=[ \\t]*/, "", s); sub(/[ \\t]*(#.*)?$/, "", s)
      if (s ~ /^".*"$/ || s ~ /^\\047.*\\047$/) return substr(s, 2, length(s) - 2)
      return "?" s
    }
    BEGIN {
      version = 1; top = 1
      t[2] = "[plugins.\\"io.containerd.grpc.v1.cri\\".registry]"
      t[3] = "[plugins.\\"io.containerd.cri.v1.images\\".registry]"
    }
    /^[ \\t]*#/ { next }
    /^[ \\t]*\\[/ {
      content = 1
      top = 0; table = norm($0)
      for (v = 2; v <= 3; v++) {
        if (table == t[v]) { header[v] = NR; headers[v]++ }
        # registry.mirrors with entries (an empty [….registry.mirrors] table, as containerd config default writes, is fine)
        m = substr(t[v], 1, length(t[v]) - 1) ".mirrors"
        if (index(table, m ".") == 1 && !mirrors[v]) mirrors[v] = NR
        inmirrors[v] = (table == m "]")
      }
      next
    }
    /[^ \\t]/ {
      content = 1
      for (v = 2; v <= 3; v++) if (inmirrors[v] && !mirrors[v]) mirrors[v] = NR
    }
    top && /^[ \\t]*version[ \\t]*=/ { s = $0; sub(/^[^=]*=[ \\t]*/, "", s); version = s + 0; next }
    /config_path/ {
      if ($0 ~ /^[ \\t]*config_path[ \\t]*=/) {
        for (v = 2; v <= 3; v++) if (table == t[v]) { line[v] = NR; val[v] = value($0) }
      } else if (!odd) odd = NR
      next
    }
    /(^|[ \\t.])registry[ \\t]*=/ { if (!odd) odd = NR }
    END {
      if (!content) { print "empty - -"; exit }
      v = version
      if (v != 2 && v != 3) { print "version - " v; exit }
      if (headers[v] > 1) { print "unknown " header[v] " -"; exit }
      if (mirrors[v]) { print "mirrors " mirrors[v] " -"; exit }
      if (line[v]) {
        if (val[v] == want) { print "ok - -"; exit }
        if (val[v] == "") { print "set " line[v] " " v; exit }
        n = split(val[v], parts, ":")
        for (i = 1; i <= n; i++) if (parts[i] == want && major != 2) { print "ok - -"; exit }
        print "foreign " line[v] " " val[v]; exit
      }
      if (odd) { print "unknown " odd " -"; exit }
      if (header[v]) { print "insert " header[v] " " v; exit }
      print "append - " v
    }
  ' "$1"
}

# The edited config, printed for ensure_file.
CC_STATE=
CC_LINE=
CC_SECTION=
edited_containerd_config() {
  awk -v state="$CC_STATE" -v n="$CC_LINE" -v want="$CERTS_D" -v section="$CC_SECTION" '
    state == "set" && NR == n { match($0, /^[ \\t]*/); print substr($0, 1, RLENGTH) "config_path = \\"" want "\\""; next }
    { print }
    state == "insert" && NR == n { match($0, /^[ \\t]*/); print substr($0, 1, RLENGTH) "  config_path = \\"" want "\\"" }
    END {
      if (state == "append") {
        print ""
        print "# Added by astrago-airgap node-setup.sh: containerd reads registry hosts from here."
        print section
        print "  config_path = \\"" want "\\""
      }
    }
  ' "$ROOT$CONTAINERD_CONFIG"
}

new_containerd_config() {
  if [ "$CC_MAJOR" = 2 ]; then
    printf '%s\\n' 'version = 3' '' '[plugins."io.containerd.cri.v1.images".registry]'
  else
    printf '%s\\n' 'version = 2' '' '[plugins."io.containerd.grpc.v1.cri".registry]'
  fi
  printf '  config_path = "%s"\\n' "$CERTS_D"
}

configure_containerd() {
  CC_MAJOR=$(containerd_major)
  config=$ROOT$CONTAINERD_CONFIG
  CC_STATE=missing
  if [ -f "$config" ]; then
    cc_result=$(analyse_containerd_config "$config" "$CC_MAJOR") || die "cannot read $config"
    read -r CC_STATE CC_LINE CC_VALUE <<EOF_ANALYSIS
$cc_result
EOF_ANALYSIS
  fi
  case $CC_STATE in
    ok) return 0 ;;
    missing | empty)
      case $CC_MAJOR in
        1 | 2) ;;
        *)
          attention "containerd is not installed (or ASTRAGO_CONTAINERD_VERSION is not set), so $CONTAINERD_CONFIG was not written; run this script again once containerd is installed"
          return 0
          ;;
      esac
      backup_once "$CONTAINERD_CONFIG"
      ensure_file "$CONTAINERD_CONFIG" 0644 new_containerd_config
      ;;
    set | insert | append)
      if [ "$CC_VALUE" = 3 ]; then
        CC_SECTION='[plugins."io.containerd.cri.v1.images".registry]'
      else
        CC_SECTION='[plugins."io.containerd.grpc.v1.cri".registry]'
      fi
      backup_once "$CONTAINERD_CONFIG"
      # shellcheck disable=SC2012
      cc_mode=$(ls -lnL "$config" | awk '{ m = 0; for (i = 2; i <= 10; i++) m = m * 2 + (substr($1, i, 1) != "-"); printf "%04o", m }')
      ensure_file "$CONTAINERD_CONFIG" "$cc_mode" edited_containerd_config
      ;;
    version)
      attention "$CONTAINERD_CONFIG has config version $CC_VALUE; this script edits version 2 (containerd 1.x) and 3 (containerd 2.x) configs. Set config_path = \\"$CERTS_D\\" in its registry section by hand (containerd config migrate converts old configs)."
      return 0
      ;;
    mirrors)
      attention "$CONTAINERD_CONFIG sets the deprecated registry.mirrors (line $CC_LINE), which containerd refuses together with config_path. Move those mirrors to hosts.toml files under $CERTS_D, remove them, and run this script again."
      return 0
      ;;
    foreign)
      attention "$CONTAINERD_CONFIG sets config_path = \\"$CC_VALUE\\" (line $CC_LINE). Pulls through $SITE_URL need config_path = \\"$CERTS_D\\" (containerd 2.x reads a single folder); change it by hand, or copy the hosts.toml files there."
      return 0
      ;;
    *)
      attention "$CONTAINERD_CONFIG configures the registry in a form this script does not edit (line $CC_LINE). Set config_path = \\"$CERTS_D\\" in its registry section by hand."
      return 0
      ;;
  esac
  [ "$FILE_CHANGED" = 1 ] || return 0
  if [ -z "$ROOT" ] && [ "\${ASTRAGO_NO_RESTART:-}" != 1 ] && command -v systemctl >/dev/null 2>&1 &&
    systemctl is-active --quiet containerd; then
    run_cmd systemctl restart containerd
  elif [ "$DRY_RUN" = 1 ]; then
    say "containerd would then need a restart to read $CONTAINERD_CONFIG (systemctl restart containerd)"
  else
    say "restart containerd to make it read $CONTAINERD_CONFIG: systemctl restart containerd"
  fi
}

# 4. Package repositories (apt/yum) served under $SITE_URL/repo/: the repository key and the source lines.
${PACKAGE_REPOSITORY_FUNCTIONS}
setup_package_repositories() {
${input.packageRepositories?.replace(/\n$/, '') || '  :'}
}

marker() {
  printf '%s\\n' \\
    '# Written by astrago-airgap node-setup.sh. Running the script again changes nothing while this matches.' \\
    "site=$SITE_URL" \\
    "upstreams=$UPSTREAMS" \\
    "ca_sha256=$CA_SHA256" \\
    "config_path=$CERTS_D"
}

if [ "$DRY_RUN" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  die "run it as root (or with --dry-run to see what it would do)"
fi
if [ "$DRY_RUN" = 1 ]; then
  say "astrago-airgap node setup for $SITE_URL (dry run: nothing is changed)\${ROOT:+ under $ROOT}"
else
  say "astrago-airgap node setup for $SITE_URL\${ROOT:+ under $ROOT}"
fi

install_ca_trust
configure_upstreams
configure_containerd
setup_package_repositories
if [ "$ATTENTION" = 0 ]; then
  ensure_file "$MARKER" 0644 marker
fi

if [ "$DRY_RUN" = 1 ]; then
  if [ "$CHANGES" = 0 ]; then say "Nothing to change."; else say "Dry run: $CHANGES change(s) would be made; nothing was changed."; fi
elif [ "$CHANGES" = 0 ]; then
  say "Nothing to change: this node is already set up for $SITE_URL."
else
  say "Done: $CHANGES change(s)."
fi
if [ "$ATTENTION" != 0 ]; then
  say "$ATTENTION item(s) need attention (the ! lines above)."
  exit 3
fi
`
}
