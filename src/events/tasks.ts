import type { TaskData, TaskKind } from './task-kinds.js'
import type { EventSink, TaskStatus, Unit } from './types.js'

let nextId = 0

/** What a task may be started with: its amount of work, and its structured data (typed by its kind). */
export interface TaskOptions<K extends TaskKind> {
  total?: number
  unit?: Unit
  data?: TaskData[K]
}

/**
 * A helper for core code: starts a task, reports progress (throttled), and ends it with its duration. Subtasks are
 * created with `child()`. `run()` wraps an async function and ends the task as done or failed. Every task has a
 * `kind` from the catalogue (task-kinds.ts); its `task.start` event carries the kind and the task's data.
 */
export class Task<K extends TaskKind = TaskKind> {
  readonly id: string
  private readonly started = Date.now()
  private ended = false
  private lastProgress = 0

  constructor(
    private readonly sink: EventSink,
    readonly kind: K,
    readonly title: string,
    options: TaskOptions<K> & { parent?: string } = {},
  ) {
    nextId += 1
    this.id = `t${nextId}`
    // The new fields (kind, data) go last, so the rest of the event reads as it always has.
    const { data, ...rest } = options
    sink.emit({
      type: 'task.start',
      id: this.id,
      title,
      ...rest,
      kind,
      ...(data === undefined ? {} : { data }),
    })
  }

  /** Starts a subtask of this one. */
  child<C extends TaskKind>(kind: C, title: string, options: TaskOptions<C> = {}): Task<C> {
    return new Task(this.sink, kind, title, { ...options, parent: this.id })
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
