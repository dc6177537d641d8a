import type { EventSink, TaskStatus, Unit } from './types.js'

let nextId = 0

/**
 * A helper for core code: starts a task, reports progress (throttled), and ends it with its duration. Subtasks are
 * created with `child()`. `run()` wraps an async function and ends the task as done or failed.
 */
export class Task {
  readonly id: string
  private readonly started = Date.now()
  private ended = false
  private lastProgress = 0

  constructor(
    private readonly sink: EventSink,
    readonly title: string,
    options: { parent?: string; total?: number; unit?: Unit } = {},
  ) {
    nextId += 1
    this.id = `t${nextId}`
    sink.emit({ type: 'task.start', id: this.id, title, ...options })
  }

  child(title: string, options: { total?: number; unit?: Unit } = {}): Task {
    return new Task(this.sink, title, { ...options, parent: this.id })
  }

  /** Reports progress; calls closer together than `minIntervalMs` are dropped unless the work is complete. */
  progress(done: number, total: number | undefined, unit: Unit, minIntervalMs = 200): void {
    const now = Date.now()
    if (total !== undefined && done < total && now - this.lastProgress < minIntervalMs) return
    this.lastProgress = now
    this.sink.emit({ type: 'task.progress', id: this.id, done, total, unit })
  }

  end(status: TaskStatus, message?: string): void {
    if (this.ended) return
    this.ended = true
    this.sink.emit({ type: 'task.end', id: this.id, status, durationMs: Date.now() - this.started, message })
  }

  async run<T>(fn: (task: Task) => Promise<T>, describe?: (result: T) => string | undefined): Promise<T> {
    try {
      const result = await fn(this)
      this.end('done', describe?.(result))
      return result
    } catch (error) {
      this.end('failed', error instanceof Error ? error.message : String(error))
      throw error
    }
  }
}
