/**
 * Checks of single values of a bundle definition (names, versions, platforms, URLs, digests, paths, package
 * requests). Each check returns what is wrong, for a message "<what is wrong>; expected <what>", or undefined when the
 * value is fine; each *_EXPECTED constant says what a valid value looks like. Pure: no YAML, no file system.
 */
import path from 'node:path'

/** A value quoted for a message. */
export const q = (value: string): string => JSON.stringify(value)

export const LABEL_EXPECTED =
  'lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters'

export function checkLabel(value: string): string | undefined {
  if (/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(value) && value.length <= 63) return undefined
  if (value.length > 63) return `${q(value)} is ${value.length} characters long`
  if (/[A-Z]/.test(value)) return `${q(value)} has uppercase letters`
  if (!/^[a-z0-9-]*$/.test(value))
    return `${q(value)} has characters other than lowercase letters, digits and "-"`
  return `${q(value)} starts or ends with "-"`
}

export const VERSION_EXPECTED =
  'a version of letters, digits, ".", "+" and "-", such as 1.0.0 or 2025.10.1-rc1'

export function checkVersion(value: string): string | undefined {
  if (/^[0-9A-Za-z.+-]+$/.test(value)) return undefined
  return `${q(value)} has characters other than letters, digits, ".", "+" and "-"`
}

export const PLATFORM_EXPECTED = 'os/arch[/variant] in lowercase, such as linux/amd64 or linux/arm64/v8'

export function checkPlatform(value: string): string | undefined {
  if (/^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/.test(value)) return undefined
  if (/[A-Z]/.test(value)) return `${q(value)} has uppercase letters`
  const parts = value.split('/').length
  if (parts < 2 || parts > 3) return `${q(value)} has ${parts} "/"-separated parts, not 2 or 3`
  return `${q(value)} is not a valid platform`
}

export const CHART_NAME_EXPECTED = 'a chart name of letters, digits, ".", "_" and "-", such as gpu-operator'

export function checkChartName(value: string): string | undefined {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)) return undefined
  if (value.includes('/'))
    return `${q(value)} has a "/" (the repository goes in repo, the name alone in name)`
  return `${q(value)} is not a chart name`
}

export const CHART_VERSION_EXPECTED = 'an exact chart version such as 1.2.3 or v25.3.0'

export function checkChartVersion(value: string): string | undefined {
  if (/^v?[0-9][0-9A-Za-z.+-]*$/.test(value) && !/(?:^|\.)[xX*](?:\.|$)/.test(value)) return undefined
  if (/[\^~<>=*|, ]|(?:^|\.)[xX](?:\.|$)/.test(value)) {
    return `${q(value)} is a version range (a bundle pins exact versions)`
  }
  return `${q(value)} is not a chart version`
}

export const CHART_REPO_EXPECTED =
  'an http://, https:// or oci:// URL, such as https://helm.ngc.nvidia.com/nvidia or oci://registry-1.docker.io/bitnamicharts'
export const FILE_URL_EXPECTED = 'an http:// or https:// URL'

export function checkUrl(value: string, protocols: readonly string[]): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return `${q(value)} is not a URL`
  }
  if (!protocols.includes(url.protocol)) return `${q(value)} has the scheme ${q(url.protocol.slice(0, -1))}`
  if (!value.toLowerCase().startsWith(`${url.protocol}//`))
    return `${q(value)} lacks "//" after "${url.protocol}"`
  // Never echo the value: it holds a secret.
  if (url.username !== '' || url.password !== '') return 'the URL contains a user name or password'
  if (url.hostname === '') return `${q(value)} has no host`
  return undefined
}

export const SHA256_EXPECTED = '64 lowercase hex digits (as printed by sha256sum)'

export function checkSha256(value: string): string | undefined {
  if (/^[0-9a-f]{64}$/.test(value)) return undefined
  if (value.startsWith('sha256:')) return `${q(value)} starts with "sha256:"; give the hex digits alone`
  if (/^[0-9a-fA-F]{64}$/.test(value)) return `${q(value)} has uppercase hex digits`
  if (/^[0-9a-fA-F]*$/.test(value)) return `${q(value)} has ${value.length} hex digits, not 64`
  return `${q(value)} has characters other than hex digits`
}

export const FILE_PATH_EXPECTED =
  'a relative path inside the bundle\'s files/ folder, such as bin/linux-amd64/helm.tar.gz: "/" between ' +
  'segments, no leading "/", no "\\", no empty, "." or ".." segments'

export function checkFilePath(value: string): string | undefined {
  if (value.includes('\\')) return `${q(value)} has a "\\"; separate folders with "/"`
  if (value.startsWith('/')) return `${q(value)} is absolute (starts with "/")`
  if (/^[A-Za-z]:/.test(value)) return `${q(value)} is absolute (starts with a drive letter)`
  if (value.includes('\0')) return `${q(value)} has a NUL character`
  const segments = value.split('/')
  if (segments.includes('')) return `${q(value)} has an empty segment (a trailing "/" or "//")`
  if (segments.includes('..')) return `${q(value)} has a ".." segment`
  if (segments.includes('.')) return `${q(value)} has a "." segment`
  return undefined
}

const WORD_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+~:-]*$/

export function checkWord(value: string): string | undefined {
  return WORD_PATTERN.test(value)
    ? undefined
    : `${q(value)} has characters other than letters, digits and . _ + ~ : -`
}

// apt: name[:arch][=version] or name[:arch] (op version); rpm: name [op evr].
const PACKAGE_REQUEST_PATTERN =
  /^[A-Za-z0-9][A-Za-z0-9._+~-]*(:[a-z0-9-]+)?(=\S+|\s*\(\s*(<<|<=|=|>=|>>)\s*[^\s()]+\s*\)|\s+(<|<=|=|>=|>)\s+\S+)?$/

export const PACKAGE_NAME_EXPECTED =
  'a package request such as nfs-common, conntrack:amd64, "socat (>= 1.7)" or "nfs-utils >= 2.5"'

export function checkPackageRequest(value: string): string | undefined {
  return PACKAGE_REQUEST_PATTERN.test(value) ? undefined : `${q(value)} is not a package request`
}

export function checkKeyringPath(value: string): string | undefined {
  if (value.includes('\0')) return `${q(value)} has a NUL character`
  return undefined
}

export const STAGE_PATH_EXPECTED = "a path relative to the definition's folder, such as ../manifests/<stage>"

export function checkStagePath(value: string): string | undefined {
  if (value.includes('\\')) return `${q(value)} has a "\\"; separate folders with "/"`
  if (path.posix.isAbsolute(value) || /^[A-Za-z]:/.test(value)) return `${q(value)} is absolute`
  if (value.includes('\0')) return `${q(value)} has a NUL character`
  return undefined
}

export const GIT_URL_EXPECTED =
  'a git repository URL: https://host/org/repo (or http://, ssh://, git://, file://) or git@host:org/repo, with no password in it'

export function checkGitUrl(value: string): string | undefined {
  if (/\s/.test(value)) return `${q(value)} has white space`
  if (!value.includes('://')) {
    // The scp-like form git takes: [user@]host:path.
    if (/^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:(?!\/\/)[^\s]+$/.test(value) && !/^[A-Za-z]:[\\/]/.test(value))
      return undefined
    return `${q(value)} is not a URL`
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return `${q(value)} is not a URL`
  }
  if (!['https:', 'http:', 'ssh:', 'git:', 'file:'].includes(url.protocol))
    return `${q(value)} has the scheme ${q(url.protocol.slice(0, -1))}`
  // Never echo the value: it holds a secret.
  if (url.password !== '') return 'the URL contains a password'
  if (url.username !== '' && url.protocol !== 'ssh:') return 'the URL contains a user name'
  if (url.protocol !== 'file:' && url.hostname === '') return `${q(value)} has no host`
  return undefined
}

export const GIT_REF_EXPECTED =
  'a full 40-character commit sha (reproducible), or a branch or tag such as main or v1.2.0'

export function checkGitRef(value: string): string | undefined {
  if (/^[0-9a-fA-F]{40}$/.test(value)) return undefined
  if (/^[0-9a-fA-F]{7,39}$/.test(value))
    return `${q(value)} looks like an abbreviated commit sha (a remote cannot resolve those)`
  if (/[\s~^:?*[\\]/.test(value) || hasControlCharacter(value))
    return `${q(value)} has a character a git ref cannot have`
  if (value.includes('..') || value.includes('@{') || value === '@') return `${q(value)} is not a git ref`
  if (value.startsWith('-') || value.startsWith('/') || value.endsWith('/') || value.endsWith('.'))
    return `${q(value)} is not a git ref`
  if (value.split('/').some((part) => part === '' || part.startsWith('.') || part.endsWith('.lock')))
    return `${q(value)} is not a git ref`
  return undefined
}

export const GIT_PATH_EXPECTED =
  'the chart\'s folder inside the repository, such as charts/app ("/" between folders, no leading "/", no "..")'

export function checkGitPath(value: string): string | undefined {
  if (value.includes('\\')) return `${q(value)} has a "\\"; separate folders with "/"`
  if (value.startsWith('/')) return `${q(value)} is absolute (starts with "/")`
  if (value.includes('\0')) return `${q(value)} has a NUL character`
  if (value.split('/').includes('..'))
    return `${q(value)} has a ".." segment (it must stay inside the repository)`
  return undefined
}

export const CHART_FOLDER_EXPECTED =
  "a chart folder relative to the definition's folder, such as ../charts/app"

const hasControlCharacter = (value: string): boolean =>
  [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
