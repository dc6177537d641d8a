/**
 * Progress events: the only way core code tells the outside world what it is doing. Core modules never print; they
 * call `sink.emit(event)`, and a renderer chosen by the command (terminal, plain lines, NDJSON) shows the events.
 * Every event has a stable `type`; tasks form a tree through `parent`, and a task's `end` carries its duration.
 */
import { LOG_CODES, type LogCode, type LogData, type LogLevel, type LogLevelOf } from './codes.js'
import type { TaskData, TaskKind } from './task-kinds.js'

export type TaskStatus = 'done' | 'skipped' | 'failed'
export type Unit = 'bytes' | 'items'

export interface TaskStartEvent {
  type: 'task.start'
  id: string
  parent?: string
  /** What the task does, from the catalogue in task-kinds.ts: stable, unlike the title. */
  kind: TaskKind
  title: string
  /** Structured data about the task (the image, the stage, the object...), typed per kind. */
  data?: TaskData[TaskKind]
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

/**
 * A log line. Its `code` is one of the catalogue in codes.ts, so automation can match on it; the catalogue gives the
 * code its level and the type of its `data`. A log without a code is a plain message.
 */
export type LogEvent =
  | {
      [C in LogCode]: {
        type: 'log'
        level: LogLevelOf<C>
        code: C
        message: string
        data?: LogData[C]
      }
    }[LogCode]
  | { type: 'log'; level: LogLevel; code?: undefined; message: string; data?: undefined }

/**
 * A log event for `code`, at the level the catalogue gives it: for code that emits a code it holds in a variable (a
 * union of codes), where an object literal cannot tie the level to the code.
 */
export function logEvent<C extends LogCode>(code: C, message: string, data?: LogData[C]): LogEvent {
  const event = {
    type: 'log',
    level: LOG_CODES[code].level,
    code,
    message,
    ...(data === undefined ? {} : { data }),
  }
  return event as LogEvent
}

export type ProgressEvent = TaskStartEvent | TaskProgressEvent | TaskEndEvent | LogEvent

export interface EventSink {
  emit(event: ProgressEvent): void
}

/** A sink that drops everything: for core calls whose progress nobody watches. */
export const silentSink: EventSink = { emit() {} }
