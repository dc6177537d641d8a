import type { Readable } from 'node:stream'
import { AirgapError } from '../errors.js'
import type { RpmPackageBlock } from './rpm-package.js'
import { readPackageBlocks } from './rpm-package-blocks.js'
import { detachString } from './string-pool.js'
import { decodeXmlText, parseXmlAttributes } from './xml-scanner.js'

/**
 * Reading filelists.xml (every file of every package) and other.xml (changelogs), whose `<package>` blocks are keyed
 * by pkgid, keeping only the blocks and the file paths asked for.
 */

/** The pkgid, name and arch of a filelists.xml or other.xml `<package>` block (from its start tag alone). */
export function parsePackageBlockHeader(raw: string): RpmPackageBlock {
  const end = raw.indexOf('>')
  const attributes = parseXmlAttributes(raw.slice('<package'.length, end).replace(/\/$/, ''))
  if (!attributes.pkgid)
    throw new AirgapError('E_INPUT', `a package block without pkgid: ${raw.slice(0, 200)}`)
  return {
    pkgid: attributes.pkgid.toLowerCase(),
    name: attributes.name ?? '',
    arch: attributes.arch ?? '',
    raw,
  }
}

/** The `<file>` paths of a filelists.xml package block (directories and ghosts included, as dnf sees them). */
export function filelistPaths(raw: string): string[] {
  const paths: string[] = []
  const FILE = /<file(?:\s[^>]*)?>([^<]*)<\/file>/g
  for (let m = FILE.exec(raw); m; m = FILE.exec(raw)) paths.push(decodeXmlText(m[1]!.trim()))
  return paths
}

export interface ReadFilelistsOptions {
  /** Keep the raw block of these pkgids. */
  pkgids?: Set<string>
  /** Record which pkgids ship these paths. */
  paths?: Set<string>
}

export interface FilelistsResult {
  blocks: Map<string, RpmPackageBlock>
  /** path → pkgids shipping it (only for the paths asked). */
  providers: Map<string, string[]>
  count: number
}

/**
 * Reads filelists.xml (or other.xml, with `paths` unset), keeping only what is asked: the raw blocks of some
 * pkgids, and which packages ship some paths, so a 500 MB filelists never sits in memory.
 */
export async function readFilelists(
  input: Readable,
  options: ReadFilelistsOptions,
): Promise<FilelistsResult> {
  const blocks = new Map<string, RpmPackageBlock>()
  const providers = new Map<string, string[]>()
  const paths = options.paths?.size ? options.paths : undefined
  const count = await readPackageBlocks(input, (raw) => {
    const block = parsePackageBlockHeader(raw)
    if (options.pkgids?.has(block.pkgid))
      blocks.set(block.pkgid, {
        ...block,
        pkgid: detachString(block.pkgid),
        name: detachString(block.name),
        raw: detachString(raw),
      })
    if (paths) {
      for (const path of filelistPaths(raw)) {
        if (!paths.has(path)) continue
        const list = providers.get(path)
        if (list) list.push(detachString(block.pkgid))
        else providers.set(detachString(path), [detachString(block.pkgid)])
      }
    }
  })
  return { blocks, providers, count }
}
