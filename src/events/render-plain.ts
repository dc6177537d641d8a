import { formatBytes, formatDuration, formatRate } from './format.js'
import type { EventSink, ProgressEvent } from './types.js'

/**
 * Plain log lines for logs, CI and pipes: one line when a task starts and ends, and a progress line at most every
 * `progressIntervalMs` per task. Written to stderr; stdout stays for results.
 */
export class PlainRenderer implements EventSink {
  private readonly titles = new Map<
    string,
    { title: string; depth: number; started: number; lastLine: number }
  >()

  constructor(
    private readonly write: (line: string) => void,
    private readonly options: { progressIntervalMs?: number; verbose?: boolean } = {},
  ) {}

  emit(event: ProgressEvent): void {
    switch (event.type) {
      case 'task.start': {
        const depth = event.parent ? (this.titles.get(event.parent)?.depth ?? 0) + 1 : 0
        this.titles.set(event.id, { title: event.title, depth, started: Date.now(), lastLine: Date.now() })
        this.write(`${'  '.repeat(depth)}> ${event.title}`)
        break
      }
      case 'task.progress': {
        const task = this.titles.get(event.id)
        if (!task) return
        const now = Date.now()
        if (now - task.lastLine < (this.options.progressIntervalMs ?? 5000)) return
        task.lastLine = now
        const seconds = (now - task.started) / 1000
        const amount =
          event.unit === 'bytes'
            ? `${formatBytes(event.done)}${event.total !== undefined ? ` of ${formatBytes(event.total)}` : ''}, ${formatRate(event.done / seconds)}`
            : `${event.done}${event.total !== undefined ? ` of ${event.total}` : ''}`
        const percent = event.total ? ` ${Math.floor((100 * event.done) / event.total)}%` : ''
        this.write(`${'  '.repeat(task.depth)}  ${task.title}:${percent} ${amount}`)
        break
      }
      case 'task.end': {
        const task = this.titles.get(event.id)
        if (!task) return
        this.titles.delete(event.id)
        const mark = event.status === 'done' ? 'ok' : event.status === 'skipped' ? 'skipped' : 'FAILED'
        const message = event.message ? `: ${event.message}` : ''
        this.write(
          `${'  '.repeat(task.depth)}${mark} ${task.title} (${formatDuration(event.durationMs)})${message}`,
        )
        break
      }
      case 'log':
        if (event.level === 'debug' && !this.options.verbose) return
        this.write(
          `${event.level === 'warn' ? 'warning' : event.level}: ${event.message}${event.code ? ` [${event.code}]` : ''}`,
        )
        break
    }
  }
}
