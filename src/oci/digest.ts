import { createHash } from 'node:crypto'

/** The OCI digest (`sha256:<hex>`) of bytes held in memory: a manifest, a config, bundle.json, a stage file. */
export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}
