import { appendFile, open, readFile, rm } from 'node:fs/promises'

/**
 * The resume journal of a bundle being written (<bundle>.journal, NDJSON). Its first line names the plan (a digest of
 * the planned layout); each later line says a member is complete, or how many bytes of a member are safely on disk.
 * Lines are appended only after the bundle file was flushed, so what the journal claims is always true after a crash.
 */
export interface JournalState {
  done: Set<string>
  partial: Map<string, number>
}

type Line = { plan: string } | { done: string } | { partial: string; bytes: number }

export class Journal {
  private constructor(
    readonly path: string,
    readonly state: JournalState,
  ) {}

  /** Opens the journal for `plan`; a journal of another plan (or none, or a damaged one) starts fresh. */
  static async open(path: string, plan: string): Promise<{ journal: Journal; resumed: boolean }> {
    const state: JournalState = { done: new Set(), partial: new Map() }
    let resumed = false
    try {
      const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean)
      const first = lines.length ? (JSON.parse(lines[0]!) as Line) : undefined
      if (first && 'plan' in first && first.plan === plan) {
        resumed = true
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
      }
    } catch {}
    if (!resumed) {
      const handle = await open(path, 'w')
      await handle.writeFile(`${JSON.stringify({ plan })}\n`)
      await handle.sync()
      await handle.close()
    }
    return { journal: new Journal(path, state), resumed }
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
