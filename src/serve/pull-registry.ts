/**
 * The registry nodes pull from once `install --push-to` has copied the bundle into the site's own registry (Harbor in
 * the cluster, stage registry): install records it in the site state folder after a successful push, and the site
 * server's node setup (node-setup.ts) then points containerd at it, with the site server as the fallback while it
 * runs. The record is the push target as typed (scheme, host, project), nothing secret.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AirgapError } from '../errors.js'
import { removeLeftTemporaries, replaceFile } from '../fs/replace-file.js'
import type { PushTarget } from '../push/target.js'

export const PULL_REGISTRY_FILE = 'pull-registry.json'

export interface PullRegistry {
  /** http(s)://host[:port] of the registry nodes pull from (http: it speaks plain HTTP). */
  url: string
  /** The repository path in front of every name (a Harbor project), as pushed. */
  prefix?: string
}

/** The pull registry of a push target. */
export function pullRegistryOf(target: PushTarget, plainHttp: boolean): PullRegistry {
  return {
    url: `${plainHttp ? 'http' : 'https'}://${target.registry}`,
    ...(target.prefix ? { prefix: target.prefix } : {}),
  }
}

/**
 * Records where the bundle was pushed: atomically (a reader sees the old record or the new one) and on disk before the
 * rename (serve refuses to start on a damaged record, so a power cut must not leave one).
 */
export async function writePullRegistry(
  stateDir: string,
  pull: PullRegistry,
  bundle: { name: string; version: string },
): Promise<string> {
  await mkdir(stateDir, { recursive: true })
  const file = join(stateDir, PULL_REGISTRY_FILE)
  const record = { ...pull, bundle, pushedAt: new Date().toISOString() }
  await removeLeftTemporaries(file)
  await replaceFile(file, `${JSON.stringify(record, null, 1)}\n`, { durable: true })
  return file
}

/** The recorded pull registry, or undefined when the bundle was never pushed from this state folder. */
export async function readPullRegistry(stateDir: string): Promise<PullRegistry | undefined> {
  const file = join(stateDir, PULL_REGISTRY_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  let record: unknown
  try {
    record = JSON.parse(text)
  } catch {
    record = undefined
  }
  const { url, prefix } = (record ?? {}) as { url?: unknown; prefix?: unknown }
  if (
    typeof url !== 'string' ||
    !/^https?:\/\/[^/]+$/.test(url) ||
    (prefix !== undefined && typeof prefix !== 'string')
  )
    throw new AirgapError('E_INPUT', `${file} is not a pull registry record (url, prefix).`, {
      hints: [
        `Remove ${file} and run the install with --push-to again to record where the bundle was pushed.`,
      ],
    })
  return { url, ...(typeof prefix === 'string' && prefix ? { prefix } : {}) }
}
