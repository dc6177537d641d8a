import { Flags } from '@oclif/core'
import { AirgapError } from '../errors.js'

/** Size flags (--split-size 4G), parsed by oclif when it reads the command line, so a command gets bytes. */

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** The smallest volume the bundle writer accepts. */
export const MIN_SPLIT_SIZE = 1 << 20

/**
 * "4G", "700M", "4.7G", "4GiB", "1048576" → bytes (binary units), rounded down to a whole tar block (512 bytes). A size
 * below `min` bytes is refused.
 */
export function parseSize(text: string, min = MIN_SPLIT_SIZE): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text)
  if (!match) {
    throw new AirgapError('E_USAGE', `"${text}" is not a size; write it like 4G, 700M or 4294967296.`, {
      hints: ['A number of bytes, or a number with K, M, G or T (powers of 1024), e.g. 4G or 4.3G.'],
    })
  }
  const bytes = Math.floor(Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!)
  if (!Number.isSafeInteger(bytes))
    throw new AirgapError('E_USAGE', `Size ${text} is too large.`, { hints: ['Give a size below 8P.'] })
  if (bytes < min)
    throw new AirgapError('E_USAGE', `Split size ${text} is too small; use at least 1M.`, {
      hints: ['Volumes are usually 4G (FAT32) or 4.3G (a DVD).'],
    })
  return bytes - (bytes % 512)
}

/** --split-size SIZE: the bytes of each volume. */
export const splitSizeFlag = Flags.custom<number>({
  description: 'Split the bundle into volumes of this size (e.g. 4G for FAT32, 4.3G for DVDs).',
  helpValue: 'SIZE',
  parse: async (input) => parseSize(input),
})()
