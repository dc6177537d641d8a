import { formatBytes, formatDuration, formatRate } from './format.js'
import type { EventSink, ProgressEvent, TaskStatus, Unit } from './types.js'

/**
 * The terminal renderer: a live tree of the running tasks, redrawn in place (spinners, byte progress with rate and
 * ETA); finished subtasks collapse, finished top-level tasks stay as one line with their outcome and duration.
 *
 * It renders the core's events itself rather than through listr2: listr2 owns the task functions it runs, whereas
 * astrago-airgap's core runs its own work and only reports it; mapping a stream of events onto listr2's task model
 * would need every subtask known before its parent starts, which a bundle (one task per image, discovered while
 * resolving) cannot give.
 */
interface Node {
  id: string
  title: string
  parent?: string
  depth: number
  started: number
  done?: number
  total?: number
  unit?: Unit
  children: string[]
  status?: TaskStatus
  message?: string
  durationMs?: number
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
const MARKS: Record<TaskStatus, string> = {
  done: '\u001b[32m✔\u001b[0m',
  skipped: '\u001b[33m↓\u001b[0m',
  failed: '\u001b[31m✖\u001b[0m',
}

export class TtyRenderer implements EventSink {
  private readonly nodes = new Map<string, Node>()
  private readonly roots: string[] = []
  private drawnLines = 0
  private frame = 0
  private timer: NodeJS.Timeout | undefined
  private readonly logs: string[] = []

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly options: { verbose?: boolean; intervalMs?: number } = {},
  ) {}

  emit(event: ProgressEvent): void {
    switch (event.type) {
      case 'task.start': {
        const parent = event.parent ? this.nodes.get(event.parent) : undefined
        const node: Node = {
          id: event.id,
          title: event.title,
          parent: event.parent,
          depth: parent ? parent.depth + 1 : 0,
          started: Date.now(),
          total: event.total,
          unit: event.unit,
          children: [],
        }
        this.nodes.set(event.id, node)
        if (parent) parent.children.push(event.id)
        else this.roots.push(event.id)
        this.start()
        break
      }
      case 'task.progress': {
        const node = this.nodes.get(event.id)
        if (node)
          Object.assign(node, { done: event.done, total: event.total ?? node.total, unit: event.unit })
        break
      }
      case 'task.end': {
        const node = this.nodes.get(event.id)
        if (node)
          Object.assign(node, { status: event.status, message: event.message, durationMs: event.durationMs })
        if (node && !node.parent) this.draw()
        break
      }
      case 'log':
        if (event.level === 'debug' && !this.options.verbose) return
        this.logs.push(
          `${event.level === 'warn' ? '\u001b[33mwarning\u001b[0m' : event.level}: ${event.message}`,
        )
        this.draw()
        break
    }
    if ([...this.nodes.values()].every((n) => n.status)) this.stop()
  }

  private start(): void {
    this.timer ??= setInterval(() => this.draw(), this.options.intervalMs ?? 100)
    this.timer.unref()
  }

  /** Draws a last time and stops redrawing (also called when every task has ended). */
  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    this.draw()
  }

  private draw(): void {
    this.frame = (this.frame + 1) % FRAMES.length
    const width = this.stream.columns || 100
    const lines: string[] = this.logs.splice(0)
    // Logs and finished top-level tasks are printed once, above the live area, and scroll away.
    const live: string[] = []
    while (this.roots.length && this.nodes.get(this.roots[0]!)?.status) {
      const root = this.nodes.get(this.roots.shift()!)!
      lines.push(...this.renderNode(root, true))
      this.forget(root)
    }
    for (const id of this.roots) live.push(...this.renderNode(this.nodes.get(id)!, false))
    const clear = this.drawnLines ? `\u001b[${this.drawnLines}A\u001b[0J` : ''
    const fit = (line: string) => (visibleLength(line) > width ? `${line.slice(0, width - 1)}…` : line)
    const text = [...lines, ...live].map(fit).join('\n')
    if (clear || text) this.stream.write(`${clear}${text}${text ? '\n' : ''}`)
    this.drawnLines = live.length
  }

  private renderNode(node: Node, finished: boolean): string[] {
    const indent = '  '.repeat(node.depth)
    if (node.status) {
      const message = node.message ? `: ${node.message}` : ''
      const line = `${indent}${MARKS[node.status]} ${node.title} (${formatDuration(node.durationMs ?? 0)})${message}`
      // A finished task collapses to one line, unless it failed: then its failed children show why.
      if (node.status !== 'failed' || finished) {
        const failedChildren = node.children
          .map((c) => this.nodes.get(c)!)
          .filter((c) => c.status === 'failed')
          .flatMap((c) => this.renderNode(c, true))
        return [line, ...failedChildren]
      }
      return [line]
    }
    const lines = [`${indent}\u001b[36m${FRAMES[this.frame]}\u001b[0m ${node.title}${this.progress(node)}`]
    const running = node.children.map((c) => this.nodes.get(c)!).filter((c) => !c.status)
    const shown = running.slice(0, 8)
    for (const child of shown) lines.push(...this.renderNode(child, false))
    if (running.length > shown.length) lines.push(`${indent}  … and ${running.length - shown.length} more`)
    return lines
  }

  private progress(node: Node): string {
    if (node.done === undefined) {
      const elapsed = (Date.now() - node.started) / 1000
      return elapsed >= 2 ? ` \u001b[2m${formatDuration(Date.now() - node.started)}\u001b[0m` : ''
    }
    const seconds = Math.max((Date.now() - node.started) / 1000, 0.001)
    if (node.unit !== 'bytes') return node.total ? ` [${node.done}/${node.total}]` : ` [${node.done}]`
    const rate = node.done / seconds
    const percent = node.total ? Math.min(100, Math.floor((100 * node.done) / node.total)) : undefined
    const bar =
      percent === undefined ? '' : ` ${'█'.repeat(Math.floor(percent / 5)).padEnd(20, '░')} ${percent}%`
    const eta =
      node.total && rate > 0
        ? `, ETA ${formatDuration(Math.round(((node.total - node.done) / rate) * 1000))}`
        : ''
    const of = node.total ? ` of ${formatBytes(node.total)}` : ''
    return `${bar} ${formatBytes(node.done)}${of}, ${formatRate(rate)}${eta}`
  }

  private forget(node: Node): void {
    for (const child of node.children) this.forget(this.nodes.get(child)!)
    this.nodes.delete(node.id)
  }
}

function visibleLength(text: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes to measure the visible width
  return text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '').length
}
