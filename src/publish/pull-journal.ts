/**
 * The resume journal of a pull in progress (`<file>.pull.json` next to the output): which published bundle it is for
 * (the manifest digest and the split size, so a journal of another bundle or layout is ignored), which chunks are
 * complete, and how many bytes of the others are on disk. It is written after the bytes it describes, so it never
 * claims more than the partial file holds; on resume each chunk's bytes are hashed again from the file anyway, so a
 * journal that is wrong costs a download, never a corrupt bundle.
 */
import { readFile, rm } from 'node:fs/promises'
import { removeLeftTemporaries, replaceFile } from '../fs/replace-file.js'

export interface PullState {
  manifest: string
  splitSize: number
  done: number[]
  partial: Record<string, number>
}

export class PullJournal {
  private writing: Promise<void> = Promise.resolve()
  private lastSaved = 0
  private queued = false

  private constructor(
    readonly path: string,
    readonly state: PullState,
  ) {}

  /** The journal at `path` if it belongs to this manifest and split size, else a fresh one. */
  static async open(
    path: string,
    manifest: string,
    splitSize: number,
  ): Promise<{ journal: PullJournal; resumed: boolean }> {
    try {
      const saved = JSON.parse(await readFile(path, 'utf8')) as PullState
      if (
        saved.manifest === manifest &&
        saved.splitSize === splitSize &&
        Array.isArray(saved.done) &&
        saved.done.every((n) => Number.isSafeInteger(n)) &&
        typeof saved.partial === 'object' &&
        saved.partial !== null
      ) {
        return { journal: new PullJournal(path, saved), resumed: true }
      }
    } catch {}
    return { journal: new PullJournal(path, { manifest, splitSize, done: [], partial: {} }), resumed: false }
  }

  isDone(index: number): boolean {
    return this.state.done.includes(index)
  }

  /** Bytes of chunk `index` an earlier run wrote (0 if none). */
  partialBytes(index: number): number {
    const bytes = this.state.partial[String(index)]
    return typeof bytes === 'number' && Number.isSafeInteger(bytes) && bytes > 0 ? bytes : 0
  }

  /** Records progress of a chunk; saved at most twice a second unless `now`. */
  progress(index: number, bytes: number, now = false): void {
    this.state.partial[String(index)] = bytes
    if (now || Date.now() - this.lastSaved > 500) this.save()
  }

  complete(index: number): void {
    delete this.state.partial[String(index)]
    if (!this.state.done.includes(index)) this.state.done.push(index)
    this.save()
  }

  /** Starts a fresh journal (after the output was found unusable). */
  reset(): void {
    this.state.done = []
    this.state.partial = {}
    this.save()
  }

  async flush(): Promise<void> {
    await this.writing
  }

  /**
   * Removes the journal, and the temporary files of it that runs killed between writing one and renaming it into
   * place left behind (`<journal>.<pid>.tmp`, whatever the pid).
   */
  async remove(): Promise<void> {
    await this.writing
    await rm(this.path, { force: true })
    await removeLeftTemporaries(this.path)
  }

  /**
   * Queues a write of the state as it is when the write starts; while one is queued, more calls add nothing, so a slow
   * disk never builds a backlog of stale states.
   */
  private save(): void {
    this.lastSaved = Date.now()
    if (this.queued) return
    this.queued = true
    this.writing = this.writing
      .then(async () => {
        this.queued = false
        const text = `${JSON.stringify(this.state)}\n`
        await replaceFile(this.path, text)
      })
      .catch(() => undefined) // a journal that cannot be written only costs a resume
  }
}
