import { appendFile, open, readFile, rm, stat } from 'node:fs/promises'

/**
 * The resume journal of a bundle being written (<bundle>.journal, NDJSON). Its first line names the plan (a digest of
 * the planned layout) and the files it is written for (device, inode, birth time and size of `<bundle>.partial` or its
 * volumes); each later line says a member is complete, or how many bytes of a member are safely on disk. Lines are
 * appended only after the bundle file was flushed, so what the journal claims is true after a crash, of those files
 * and no others: a rerun checks it has them before it believes a line.
 */
export interface JournalState {
  done: Set<string>
  partial: Map<string, number>
}

/** Which file a journal was written for: the same inode on the same device, born at the same time, at this size. */
export interface FileIdentity {
  dev: string
  ino: string
  birthtimeNs: string
  size: number
}

type Line = { plan: string; files?: FileIdentity[] } | { done: string } | { partial: string; bytes: number }

export interface JournalRecord {
  state: JournalState
  /** The files the journal was written for, in volume order; empty for a journal that did not record them. */
  files: FileIdentity[]
}

export class Journal {
  private constructor(
    readonly path: string,
    readonly state: JournalState,
  ) {}

  /** Reads the journal at `path` if it is one of `plan`; none, a damaged one or one of another plan: undefined. */
  static async read(path: string, plan: string): Promise<JournalRecord | undefined> {
    let lines: string[]
    let first: Line | undefined
    try {
      lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean)
      first = lines.length ? (JSON.parse(lines[0]!) as Line) : undefined
    } catch {
      return undefined
    }
    if (!first || !('plan' in first) || first.plan !== plan) return undefined
    const state: JournalState = { done: new Set(), partial: new Map() }
    for (const text of lines.slice(1)) {
      let line: Line
      try {
        line = JSON.parse(text) as Line
      } catch {
        break // a line cut short by a crash: everything before it holds
      }
      if ('done' in line) {
        state.done.add(line.done)
        state.partial.delete(line.done)
      } else if ('partial' in line && !state.done.has(line.partial)) {
        state.partial.set(line.partial, line.bytes)
      }
    }
    return { state, files: Array.isArray(first.files) ? first.files : [] }
  }

  /** Continues a journal read with `read`, once its files were found on disk. */
  static resume(path: string, record: JournalRecord): Journal {
    return new Journal(path, record.state)
  }

  /** Starts a new, empty journal for `plan`, written into `files` (which must exist), replacing any at `path`. */
  static async create(path: string, plan: string, files: string[]): Promise<Journal> {
    const identities: FileIdentity[] = []
    for (const file of files) identities.push((await fileIdentity(file))!)
    const handle = await open(path, 'w')
    try {
      await handle.writeFile(`${JSON.stringify({ plan, files: identities } satisfies Line)}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }
    return new Journal(path, { done: new Set(), partial: new Map() })
  }

  /** Appends facts that are already durable in the bundle file. */
  async record(entries: { done?: string[]; partial?: Map<string, number> }): Promise<void> {
    const lines: string[] = []
    for (const path of entries.done ?? []) {
      this.state.done.add(path)
      this.state.partial.delete(path)
      lines.push(JSON.stringify({ done: path }))
    }
    for (const [path, bytes] of entries.partial ?? []) {
      if (this.state.done.has(path)) continue
      this.state.partial.set(path, bytes)
      lines.push(JSON.stringify({ partial: path, bytes }))
    }
    if (lines.length) await appendFile(this.path, `${lines.join('\n')}\n`)
  }

  async remove(): Promise<void> {
    await rm(this.path, { force: true })
  }
}

/** The identity of the file at `path`, or undefined when there is none. */
export async function fileIdentity(path: string): Promise<FileIdentity | undefined> {
  try {
    const info = await stat(path, { bigint: true })
    if (!info.isFile()) return undefined
    return {
      dev: String(info.dev),
      ino: String(info.ino),
      birthtimeNs: String(info.birthtimeNs),
      size: Number(info.size),
    }
  } catch {
    return undefined
  }
}

export function sameFile(a: FileIdentity | undefined, b: FileIdentity): boolean {
  return !!a && a.dev === b.dev && a.ino === b.ino && a.birthtimeNs === b.birthtimeNs && a.size === b.size
}
