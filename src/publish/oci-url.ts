/**
 * `oci://registry[:port]/repository[:tag|@sha256:…]`, the address of a published bundle, as Helm and oras write it.
 * The registry host is always explicit (no Docker Hub default: a release belongs to a registry the team names).
 */
import { AirgapError } from '../errors.js'
import { parseImageReference } from '../oci/reference.js'

export interface OciAddress {
  registry: string
  repository: string
  /** The tag written, if any. */
  tag?: string
  digest?: string
}

export function parseOciAddress(input: string, flag = 'the reference'): OciAddress {
  const text = input.trim()
  const usage = (why: string): never => {
    throw new AirgapError('E_USAGE', `${flag} ${input}: ${why}.`, {
      hints: [
        'Write it as oci://REGISTRY[:PORT]/REPOSITORY[:TAG], e.g. oci://harbor.example:443/releases/astrago:1.0.0.',
      ],
    })
  }
  if (!/^oci:\/\//i.test(text)) usage('it does not start with oci://')
  const rest = text.slice('oci://'.length)
  const slash = rest.indexOf('/')
  if (slash <= 0) usage('it names no repository after the registry')
  const host = rest.slice(0, slash)
  if (!(host.includes('.') || host.includes(':') || host === 'localhost' || host.startsWith('['))) {
    usage(`"${host}" is not a registry host (it needs a dot, a port, or to be localhost)`)
  }
  let parsed: ReturnType<typeof parseImageReference>
  try {
    parsed = parseImageReference(rest)
  } catch (error) {
    return usage((error as Error).message)
  }
  const path = rest.slice(slash + 1).split('@')[0]!
  const written = /:([^/]+)$/.exec(path)?.[1]
  return {
    registry: parsed.registry,
    repository: parsed.repository,
    ...(written ? { tag: written } : {}),
    ...(parsed.digest ? { digest: parsed.digest } : {}),
  }
}

export function formatOciAddress(address: OciAddress): string {
  return `oci://${address.registry}/${address.repository}${address.tag ? `:${address.tag}` : ''}${address.digest ? `@${address.digest}` : ''}`
}
