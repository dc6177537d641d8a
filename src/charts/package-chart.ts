import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, readFile, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { constants, createGzip } from 'node:zlib'
import { load } from 'js-yaml'
import { END_OF_ARCHIVE, encodeMemberHeader, padTo512 } from '../bundle/tar.js'
import { AirgapError } from '../errors.js'
import { type ChartMetadata, MAX_CHART_BYTES, readChartMetadata } from './download.js'
import { parseHelmIgnore } from './helmignore.js'
import { isObject } from './repo-index.js'

/**
 * Packages a chart folder into a chart archive (.tgz) reproducibly: the same files give the same bytes, wherever and
 * whenever it runs. Entries are the chart's files (after .helmignore) under `<name>/`, in byte order of their paths,
 * regular files only, each with mode 0644, owner 0:0, no user or group names and mtime 0; gzip at level 9 with no
 * name, mtime 0 and OS "unknown" in its header. Helm reads it like any chart archive (`helm template`, `helm
 * install`). Files can be added or replaced (vendored dependencies under charts/) without touching the folder.
 */
export interface PackageChartOptions {
  /** Files to add, or to put in place of the folder's own: path in the chart (`/`-separated) → file on disk. */
  extraFiles?: Map<string, string>
  /** Paths in the chart to leave out, files or folders (e.g. an outdated dependency that extraFiles replaces). */
  omit?: Set<string>
  /** How the folder is named in messages (default: its path). */
  label?: string
}

export interface PackagedChart {
  /** The chart archive. */
  bytes: Buffer
  /** sha256 of `bytes`, lowercase hex. */
  sha256: string
  /** `<name>-<version>.tgz`, as helm names it. */
  fileName: string
  metadata: ChartMetadata
  /** The paths packaged, relative to the chart's root, in archive order. */
  files: string[]
}

/** Reads a chart folder's Chart.yaml (name and version are required). A missing one is E_INPUT. */
export async function readChartYaml(dir: string, label = dir): Promise<{ name: string; version: string }> {
  let text: string
  try {
    text = await readFile(join(dir, 'Chart.yaml'), 'utf8')
  } catch (error) {
    throw new AirgapError('E_INPUT', `${label} has no Chart.yaml: it is not a Helm chart.`, {
      cause: error,
      data: { field: 'path', where: label },
      hints: ['Point the chart source at the folder that holds Chart.yaml (its path inside the repository).'],
    })
  }
  let doc: unknown
  try {
    doc = load(text, { json: true, filename: `${label}/Chart.yaml` })
  } catch (error) {
    throw new AirgapError('E_INPUT', `${label}/Chart.yaml is not valid YAML: ${(error as Error).message}`, {
      cause: error,
      data: { field: 'path', where: label },
    })
  }
  const name = isObject(doc) ? scalar(doc.name) : undefined
  const version = isObject(doc) ? scalar(doc.version) : undefined
  if (!name || !version || !/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new AirgapError('E_INPUT', `${label}/Chart.yaml has no valid name and version.`, {
      data: { field: 'path', where: label },
      hints: ['A chart needs `name:` (letters, digits, . _ -) and `version:` in its Chart.yaml.'],
    })
  }
  return { name, version }
}

export async function packageChart(dir: string, options: PackageChartOptions = {}): Promise<PackagedChart> {
  const label = options.label ?? dir
  const { name, version } = await readChartYaml(dir, label)
  let ignoreText = ''
  try {
    ignoreText = await readFile(join(dir, '.helmignore'), 'utf8')
  } catch {}
  const ignore = parseHelmIgnore(ignoreText, `${label}/.helmignore`)

  const files = new Map<string, string>()
  await walk(
    dir,
    '',
    new Set([await realpath(dir)]),
    (rel, abs) => {
      if (!omitted(rel, options.omit)) files.set(rel, abs)
    },
    ignore.ignores.bind(ignore),
  )
  for (const [rel, abs] of options.extraFiles ?? []) files.set(rel, abs)
  const order = [...files.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))

  const chunks: Buffer[] = []
  let size = 0
  const collect = new Writable({
    write(chunk: Buffer, _encoding, done) {
      size += chunk.length
      if (size > MAX_CHART_BYTES) {
        done(
          new AirgapError(
            'E_INPUT',
            `${label}: the packaged chart is larger than ${MAX_CHART_BYTES >> 20} MiB.`,
            {
              hints: ['Leave large files out of the chart with its .helmignore.'],
            },
          ),
        )
        return
      }
      chunks.push(chunk)
      done()
    },
  })
  async function* tarStream(): AsyncGenerator<Buffer> {
    for (const rel of order) {
      const abs = files.get(rel)!
      const length = (await stat(abs)).size
      yield encodeMemberHeader(`${name}/${rel}`, length)
      let read = 0
      for await (const chunk of createReadStream(abs)) {
        read += (chunk as Buffer).length
        yield chunk as Buffer
      }
      if (read !== length)
        throw new AirgapError('E_INPUT', `${label}/${rel} changed while it was being packaged; try again.`)
      yield Buffer.alloc(padTo512(length))
    }
    yield END_OF_ARCHIVE
  }
  await pipeline(
    Readable.from(tarStream()),
    createGzip({ level: constants.Z_BEST_COMPRESSION, memLevel: 8, windowBits: 15 }),
    collect,
  )
  const bytes = Buffer.concat(chunks, size)
  // The gzip header's OS byte says where zlib was built; "unknown" (255) keeps the bytes independent of it.
  bytes[9] = 0xff
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const metadata = await readChartMetadata(bytes)
  return { bytes, sha256, fileName: `${name}-${version}.tgz`, metadata, files: order }
}

/**
 * Lists the regular files under `dir` (following symbolic links, each folder once), skipping what .helmignore
 * leaves out; `rel` is `/`-separated.
 */
async function walk(
  abs: string,
  rel: string,
  seen: Set<string>,
  add: (rel: string, abs: string) => void,
  ignores: (rel: string, isDir: boolean) => boolean,
): Promise<void> {
  const entries = await readdir(abs, { withFileTypes: true })
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    const childAbs = join(abs, entry.name)
    const childRel = rel ? `${rel}/${entry.name}` : entry.name
    let isDir = entry.isDirectory()
    let isFile = entry.isFile()
    if (entry.isSymbolicLink()) {
      const target = await stat(childAbs).catch(() => undefined)
      isDir = target?.isDirectory() ?? false
      isFile = target?.isFile() ?? false
    }
    if (!isDir && !isFile) continue
    if (ignores(childRel, isDir)) continue
    if (isFile) {
      add(childRel, childAbs)
      continue
    }
    const real = await realpath(childAbs)
    if (seen.has(real)) continue
    seen.add(real)
    await walk(childAbs, childRel, seen, add, ignores)
    seen.delete(real)
  }
}

/** Whether `rel` is one of the omitted paths or inside one of them. */
function omitted(rel: string, omit: Set<string> | undefined): boolean {
  if (!omit?.size) return false
  for (let at = rel.length; at > 0; at = rel.lastIndexOf('/', at - 1))
    if (omit.has(rel.slice(0, at))) return true
  return false
}

function scalar(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number') return String(value)
  return undefined
}
