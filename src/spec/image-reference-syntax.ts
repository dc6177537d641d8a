/**
 * A syntax check of image references, following the grammar of Docker's distribution/reference package:
 *
 *   reference       := name [ ":" tag ] [ "@" digest ]
 *   name            := [ domain "/" ] path-component [ "/" path-component ]*
 *   domain          := host [ ":" port ]            (a domain-name, an IPv4 address or [IPv6])
 *   path-component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag             := [\w][\w.-]{0,127}
 *   digest          := "sha256:" [0-9a-f]{64}    (the only algorithm accepted here)
 *
 * The first "/"-separated part is the registry when it contains "." or ":", is "localhost", or has an uppercase letter
 * (Docker's own rule). This only checks the syntax; normalizing ("nginx" → "docker.io/library/nginx:latest") is a
 * separate concern.
 */

/** What a valid reference looks like, for "expected …" in error messages. */
export const IMAGE_REFERENCE_EXPECTED = '[registry/]repository[:tag][@sha256:<64 hex>]'

const NAME_MAX_LENGTH = 255
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const DOMAIN_NAME =
  /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*$/
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/
const PORT = /^[0-9]+$/
const TAG = /^\w[\w.-]{0,127}$/
const SHA256_HEX = /^[0-9a-f]{64}$/

/**
 * Returns what is wrong with an image reference's syntax (a short phrase without the reference itself, e.g.
 * `the tag "1.0:x" has the character ":", …`), or undefined when the syntax is valid.
 */
export function checkImageReferenceSyntax(ref: string): string | undefined {
  if (ref.length === 0) return 'it is empty'
  if (/\s/.test(ref)) return 'it contains whitespace'

  let rest = ref
  const at = rest.indexOf('@')
  if (at !== -1) {
    const digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    const problem = checkDigest(digest)
    if (problem !== undefined) return problem
    if (rest.length === 0) return 'the repository before "@" is missing'
  }

  const lastSlash = rest.lastIndexOf('/')
  const lastColon = rest.lastIndexOf(':')
  let name = rest
  if (lastColon > lastSlash) {
    const tag = rest.slice(lastColon + 1)
    name = rest.slice(0, lastColon)
    const problem = checkTag(tag)
    if (problem !== undefined) return problem
    if (name.slice(name.lastIndexOf('/') + 1).includes(':'))
      return 'it has more than one ":" after the last "/"'
    if (name.length === 0) return 'the repository before ":" is missing'
  }
  return checkName(name)
}

function checkDigest(digest: string): string | undefined {
  if (digest.includes('@')) return 'it has more than one "@"'
  if (digest.length === 0) return 'the digest after "@" is empty'
  if (!digest.startsWith('sha256:')) {
    const algorithm = digest.includes(':') ? digest.slice(0, digest.indexOf(':')) : digest
    return `the digest must start with "sha256:", not ${JSON.stringify(`${algorithm}:`)}`
  }
  const hex = digest.slice('sha256:'.length)
  if (SHA256_HEX.test(hex)) return undefined
  if (/^[0-9a-fA-F]{64}$/.test(hex)) return 'the digest has uppercase hex digits; use lowercase'
  if (/^[0-9a-fA-F]*$/.test(hex)) return `the digest has ${hex.length} hex digits after "sha256:", not 64`
  return 'the digest has characters other than hex digits after "sha256:"'
}

function checkTag(tag: string): string | undefined {
  if (tag.length === 0) return 'the tag after ":" is empty'
  if (TAG.test(tag)) return undefined
  if (tag.length > 128) return `the tag is ${tag.length} characters long; at most 128 are allowed`
  if (!/^\w/.test(tag)) return `the tag ${JSON.stringify(tag)} must start with a letter, digit or "_"`
  const bad = [...tag].find((c) => !/[\w.-]/.test(c))
  return `the tag ${JSON.stringify(tag)} has the character ${JSON.stringify(bad)}; tags use letters, digits, "_", "." and "-"`
}

function checkName(name: string): string | undefined {
  if (name.length > NAME_MAX_LENGTH) {
    return `the name is ${name.length} characters long; at most ${NAME_MAX_LENGTH} are allowed`
  }
  const parts = name.split('/')
  const first = parts[0] ?? ''
  const hasDomain =
    parts.length > 1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))
  if (hasDomain) {
    const problem = checkDomain(first)
    if (problem !== undefined) return problem
    parts.shift()
  }
  const path = parts.join('/')
  if (!hasDomain && /^[a-f0-9]{64}$/.test(path)) {
    return 'a 64-hex-digit name is an image ID, not a repository name'
  }
  for (const part of parts) {
    if (part.length === 0)
      return 'the repository path has an empty component (a leading, trailing or double "/")'
    if (PATH_COMPONENT.test(part)) continue
    if (/[A-Z]/.test(part))
      return `the repository path ${JSON.stringify(path)} has uppercase letters; it must be lowercase`
    return (
      `the repository path component ${JSON.stringify(part)} is not valid; components are lowercase letters and ` +
      'digits, separated by ".", "_", "__" or "-"'
    )
  }
  return undefined
}

function checkDomain(domain: string): string | undefined {
  let host = domain
  let port: string | undefined
  if (domain.startsWith('[')) {
    const close = domain.indexOf(']')
    if (close === -1) return `the registry ${JSON.stringify(domain)} has "[" without "]"`
    host = domain.slice(0, close + 1)
    const after = domain.slice(close + 1)
    if (after.length > 0) {
      if (!after.startsWith(':')) return `the registry ${JSON.stringify(domain)} is not valid`
      port = after.slice(1)
    }
    if (!IPV6_HOST.test(host)) return `the registry host ${JSON.stringify(host)} is not a valid IPv6 address`
  } else {
    const colon = domain.indexOf(':')
    if (colon !== -1) {
      host = domain.slice(0, colon)
      port = domain.slice(colon + 1)
    }
    if (!DOMAIN_NAME.test(host)) {
      return (
        `the registry host ${JSON.stringify(host)} is not valid; hosts are letters, digits and "-", ` +
        'in parts separated by "."'
      )
    }
  }
  if (port !== undefined && !PORT.test(port)) {
    return `the registry port ${JSON.stringify(port)} is not a number`
  }
  return undefined
}
