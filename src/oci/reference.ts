import { AirgapError } from '../errors.js'

/**
 * Image references, parsed and normalized exactly as Docker does: `nginx` is `docker.io/library/nginx:latest`,
 * `index.docker.io` is `docker.io`, a first component with a dot, a colon or equal to `localhost` is a registry host,
 * and the docker.io API lives at registry-1.docker.io.
 */
export interface ImageReference {
  /** Registry host as written in names (docker.io, nvcr.io, 127.0.0.1:5000). */
  registry: string
  /** Repository path inside the registry (library/nginx, nvidia/cuda). */
  repository: string
  tag?: string
  digest?: string
}

export const DOCKER_HUB = 'docker.io'
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?`
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*'
const TAG = '[\\w][\\w.-]{0,127}'
const DIGEST = '[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}'
/** Repository path, tag and digest, after the registry host (if any) is taken off. */
const REFERENCE = new RegExp(`^(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`)
const DOMAIN_ONLY = new RegExp(`^${DOMAIN}$`)
const SHA256 = /^sha256:[a-f0-9]{64}$/

/** Parses and normalizes a reference; throws E_INPUT with what is wrong. */
export function parseImageReference(input: string): ImageReference {
  const text = input.trim()
  const fail = (why: string): never => {
    throw new AirgapError('E_INPUT', `"${input}" is not a valid image reference: ${why}`, {
      hints: [
        'Write it as [registry/]repository[:tag][@sha256:<digest>], e.g. docker.io/library/nginx:1.27.0.',
      ],
    })
  }
  if (!text) fail('it is empty')
  let remainder = text
  let registry = DOCKER_HUB
  const slash = text.indexOf('/')
  if (slash > 0) {
    const first = text.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      if (!DOMAIN_ONLY.test(first)) fail(`"${first}" is not a valid registry host`)
      registry = first
      remainder = text.slice(slash + 1)
    }
  }
  if (/[A-Z]/.test(remainder.split(/[:@]/)[0]!)) fail('repository names must be lowercase')
  const match = REFERENCE.exec(remainder)
  if (!match) fail('expected [registry/]repository[:tag][@sha256:<digest>]')
  let repository = match![1]!
  const tag = match![2]
  const digest = match![3]
  if (digest && !SHA256.test(digest))
    fail(`"${digest}" is not a sha256 digest (sha256: and 64 lowercase hex digits)`)
  if (repository.length > 255) fail('the repository name is longer than 255 characters')
  if (DOCKER_HUB_ALIASES.has(registry)) {
    registry = DOCKER_HUB
    if (!repository.includes('/')) repository = `library/${repository}`
  }
  return { registry, repository, tag: tag ?? (digest ? undefined : 'latest'), digest }
}

/** registry/repository, the name an image keeps everywhere (docker.io/library/nginx). */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`
}

/** The fully qualified string form: docker.io/library/nginx:1.27@sha256:… */
export function formatImageReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

/** The API host for a registry name: docker.io is served at registry-1.docker.io. */
export function registryEndpointHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry
}
