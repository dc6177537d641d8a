/**
 * Progress events: the only way core code tells the outside world what it is doing. Core modules never print; they
 * call `sink.emit(event)`, and a renderer chosen by the command (terminal, plain lines, NDJSON) shows the events.
 * Every event has a stable `type`; tasks form a tree through `parent`, and a task's `end` carries its duration.
 */
export type TaskStatus = 'done' | 'skipped' | 'failed'
export type Unit = 'bytes' | 'items'

export interface TaskStartEvent {
  type: 'task.start'
  id: string
  parent?: string
  title: string
  /** Amount of work known in advance (bytes or items), when it is. */
  total?: number
  unit?: Unit
}

export interface TaskProgressEvent {
  type: 'task.progress'
  id: string
  done: number
  total?: number
  unit: Unit
}

export interface TaskEndEvent {
  type: 'task.end'
  id: string
  status: TaskStatus
  durationMs: number
  /** One line that says what the task achieved or why it was skipped or failed. */
  message?: string
}

export interface LogEvent {
  type: 'log'
  level: 'debug' | 'info' | 'warn'
  /** A stable code for warnings and notable facts, so automation can match on it. */
  code?: string
  message: string
}

export type ProgressEvent = TaskStartEvent | TaskProgressEvent | TaskEndEvent | LogEvent

export interface EventSink {
  emit(event: ProgressEvent): void
}

/** A sink that drops everything: for core calls whose progress nobody watches. */
export const silentSink: EventSink = { emit() {} }
