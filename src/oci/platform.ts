import { AirgapError } from '../errors.js'
import type { Platform } from './media-types.js'

/** Parses os/arch[/variant]; arm64 without a variant means v8, as containerd normalizes it. */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new AirgapError(
      'E_INPUT',
      `"${text}" is not a platform; expected os/arch[/variant], e.g. linux/amd64`,
    )
  }
  return normalizePlatform({ os: parts[0]!, architecture: parts[1]!, variant: parts[2] })
}

export function normalizePlatform(p: Platform): Platform {
  let { architecture, variant } = p
  if (architecture === 'aarch64') architecture = 'arm64'
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64'
  if (architecture === 'arm64' && (variant === undefined || variant === '')) variant = 'v8'
  if (architecture === 'amd64' && variant === 'v1') variant = undefined
  return { os: p.os, architecture, ...(variant ? { variant } : {}) }
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}

/** Does an index entry's platform satisfy a wanted one? A wanted platform without variant matches any variant. */
export function platformMatches(candidate: Platform | undefined, wanted: Platform): boolean {
  if (!candidate) return false
  const c = normalizePlatform(candidate)
  const w = normalizePlatform(wanted)
  if (c.os !== w.os || c.architecture !== w.architecture) return false
  return !w.variant || !c.variant || c.variant === w.variant
}

/** Attestation and other non-runnable index entries (buildx's unknown/unknown, referrers). */
export function isAttestation(platform: Platform | undefined, annotations?: Record<string, string>): boolean {
  return (
    (platform?.os === 'unknown' && platform.architecture === 'unknown') ||
    annotations?.['vnd.docker.reference.type'] === 'attestation-manifest'
  )
}
