import { Flags } from '@oclif/core'
import { AirgapError } from '../errors.js'

/** Reusable flags, built once. */

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** "4G", "700M", "4.7G", "1048576" → bytes (binary units). */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text)
  if (!match) {
    throw new AirgapError('E_USAGE', `"${text}" is not a size; write it like 4G, 700M or 4294967296.`)
  }
  const bytes = Math.floor(Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!)
  if (bytes < 1 << 20) throw new AirgapError('E_USAGE', `Split size ${text} is too small; use at least 1M.`)
  return bytes - (bytes % 512)
}

/** KEY=VALUE → [key, value], with an error naming the flag. */
export function parseKeyValue(flag: string, text: string): [string, string] {
  const eq = text.indexOf('=')
  if (eq <= 0 || eq === text.length - 1) {
    throw new AirgapError('E_USAGE', `--${flag} ${text}: expected KEY=VALUE.`)
  }
  return [text.slice(0, eq), text.slice(eq + 1)]
}

export const mirrorFlag = Flags.string({
  description:
    'Fetch from a mirror instead: REGISTRY=URL for images (docker.io=https://harbor.corp/v2-proxy), or URL-PREFIX=URL for charts and files. Repeatable. The bundle keeps the original names.',
  multiple: true,
  helpValue: 'FROM=URL',
})

export const concurrencyFlag = Flags.integer({
  char: 'j',
  description: 'Parallel downloads.',
  default: 8,
  min: 1,
  max: 64,
})

export const insecureRegistryFlag = Flags.string({
  description: 'Talk to this registry host over plain HTTP / without TLS verification. Repeatable.',
  multiple: true,
  helpValue: 'HOST[:PORT]',
})

export const caFileFlag = Flags.string({
  description: 'Trust the CA certificates in this PEM file (corporate mirrors). Repeatable.',
  multiple: true,
})

export const keyFlag = Flags.string({
  description:
    'A trusted public key file (binary or ASCII-armoured OpenPGP): bundle.json must be signed by it. Repeatable: any of the keys given may have signed.',
  multiple: true,
  helpValue: 'FILE',
})
