import { statfs } from 'node:fs/promises'
import { RegistryError } from './registry-errors.js'

/**
 * The bounds on uploads into the registry overlay: the size of one blob (413 SIZE_INVALID beyond it) and the free
 * space an upload must leave on the overlay's disk (507 with a DENIED body, the spec having no code for a full disk).
 * The size is checked against the declared length before any byte is written, and counted again as bytes stream (a
 * chunked body declares nothing); the free space is checked when a chunk starts, and ENOSPC while writing is a 507 too.
 */
export interface OverlayLimits {
  /** The largest blob an upload may make (default 64 GiB). */
  maxBlobBytes?: number
  /** Free space an upload must leave on the overlay's disk (default 512 MiB). */
  minFreeBytes?: number
}

export const DEFAULT_MAX_BLOB_BYTES = 64 * 2 ** 30
export const DEFAULT_MIN_FREE_BYTES = 512 * 2 ** 20

export class UploadLimits {
  readonly maxBlobBytes: number
  readonly minFreeBytes: number

  constructor(
    private readonly dir: string,
    limits: OverlayLimits = {},
  ) {
    this.maxBlobBytes = limits.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES
    this.minFreeBytes = limits.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES
  }

  /** Throws unless a chunk of `length` bytes (when declared) may follow `before` bytes already uploaded. */
  async checkRoom(before: number, length: number | undefined): Promise<void> {
    if (before + (length ?? 0) > this.maxBlobBytes) throw this.tooLarge(before + length!)
    const disk = await statfs(this.dir)
    const free = disk.bavail * disk.bsize
    if (free - (length ?? 0) < this.minFreeBytes) throw this.noSpace(free, length)
  }

  /** 413: the blob is (or would be) larger than the limit. */
  tooLarge(size?: number): RegistryError {
    const what = size === undefined ? 'The blob is larger' : `The blob would have ${size} bytes, more`
    return new RegistryError(
      'SIZE_INVALID',
      `${what} than this registry takes (${this.maxBlobBytes} bytes).`,
      { max: this.maxBlobBytes },
      413,
    )
  }

  /** 507: the overlay's disk is (nearly) full. */
  noSpace(free?: number, length?: number): RegistryError {
    const wanted = length === undefined ? '' : ` of ${length} bytes`
    const left = free === undefined ? 'no space is left' : `only ${free} bytes are free`
    return new RegistryError(
      'DENIED',
      `Not enough disk space for the upload${wanted}: ${left} on the disk of ${this.dir} (at least ${this.minFreeBytes} must stay free).`,
      { free, length },
      507,
    )
  }
}
