import cliCursor from 'cli-cursor'
import { colorEnabled } from './color-support.js'
import { formatBytes, formatDuration, formatRate } from './format.js'
import { fitLine, fitParts, printable } from './terminal-line.js'
import type { EventSink, ProgressEvent, TaskStatus, Unit } from './types.js'

/**
 * The terminal renderer: a live tree of the running tasks, redrawn in place (spinners, byte progress with rate and
 * ETA); finished subtasks collapse, finished top-level tasks stay as one line with their outcome and duration.
 *
 * It renders the core's events itself rather than through listr2: listr2 owns the task functions it runs, whereas
 * astrago-airgap's core runs its own work and only reports it, and a running listr2 list takes no new tasks, while a
 * bundle finds its tasks (one per image) as it resolves. See docs/decisions.md.
 *
 * Every line is cut to the terminal's width in cells (see terminal-line.ts), colour follows NO_COLOR and FORCE_COLOR
 * (color-support.ts), and the cursor is hidden while the tree is live and shown again when it settles or stops; the
 * cursor library also shows it when the process exits or dies from a signal.
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
const MARKS: Record<TaskStatus, [mark: string, sgr: number]> = {
  done: ['✔', 32],
  skipped: ['↓', 33],
  failed: ['✖', 31],
}
const CYAN = 36
const YELLOW = 33
const DIM = 2

export interface TtyRendererOptions {
  verbose?: boolean
  intervalMs?: number
  /** Use colour; by default decided from the environment and whether the stream is a terminal. */
  color?: boolean
}

export class TtyRenderer implements EventSink {
  private readonly nodes = new Map<string, Node>()
  private readonly roots: string[] = []
  private drawnLines = 0
  private frame = 0
  private timer: NodeJS.Timeout | undefined
  private readonly logs: string[] = []
  private readonly color: boolean
  private cursorHidden = false
  private stopped = false

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly options: TtyRendererOptions = {},
  ) {
    this.color = options.color ?? colorEnabled(process.env, Boolean(stream.isTTY))
  }

  emit(event: ProgressEvent): void {
    if (this.stopped) return
    switch (event.type) {
      case 'task.start': {
        const parent = event.parent ? this.nodes.get(event.parent) : undefined
        const node: Node = {
          id: event.id,
          title: printable(event.title),
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
          Object.assign(node, {
            status: event.status,
            message: event.message === undefined ? undefined : printable(event.message),
            durationMs: event.durationMs,
          })
        if (node && !node.parent) this.draw()
        break
      }
      case 'log':
        if (event.level === 'debug' && !this.options.verbose) return
        this.logs.push(
          ...event.message
            .split(/\r?\n/)
            .map((line, i) =>
              i === 0
                ? `${event.level === 'warn' ? this.paint(YELLOW, 'warning') : event.level}: ${printable(line)}`
                : `  ${printable(line)}`,
            ),
        )
        this.draw()
        break
    }
    if ([...this.nodes.values()].every((n) => n.status)) this.settle()
  }

  private start(): void {
    if (!this.timer) {
      this.timer = setInterval(() => this.draw(), this.options.intervalMs ?? 100)
      this.timer.unref()
    }
    if (!this.cursorHidden) {
      this.cursorHidden = true
      cliCursor.hide(this.stream)
    }
  }

  /** Every task has ended: draws a last time, stops redrawing and shows the cursor until a new task starts. */
  private settle(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    this.draw()
    if (this.cursorHidden) {
      this.cursorHidden = false
      cliCursor.show(this.stream)
    }
  }

  /**
   * Ends rendering for good (the command is finishing, or failed, or was interrupted): draws a last time, leaves what
   * is drawn where it is, shows the cursor, and ignores later events. Safe to call more than once.
   */
  stop(): void {
    if (this.stopped) return
    this.settle()
    this.drawnLines = 0
    this.stopped = true
  }

  private paint(sgr: number, text: string): string {
    return this.color ? `\u001b[${sgr}m${text}\u001b[0m` : text
  }

  private draw(): void {
    this.frame = (this.frame + 1) % FRAMES.length
    const width = this.stream.columns || 100
    const lines: string[] = this.logs.splice(0).map((line) => fitLine(line, width))
    // Logs and finished top-level tasks are printed once, above the live area, and scroll away.
    const live: string[] = []
    while (this.roots.length && this.nodes.get(this.roots[0]!)?.status) {
      const root = this.nodes.get(this.roots.shift()!)!
      lines.push(...this.renderNode(root, true, width))
      this.forget(root)
    }
    for (const id of this.roots) live.push(...this.renderNode(this.nodes.get(id)!, false, width))
    // Erases the tree line by line, from the line below it (where the terminal may have echoed ^C) up to its first
    // line, and starts again in the first column. Not "erase to end of screen": with the tree at the top of the
    // screen, tmux moves what that erases into the scrollback, one copy of the tree per frame.
    const clear = this.drawnLines ? `\r\u001b[2K${'\u001b[1A\u001b[2K'.repeat(this.drawnLines)}` : ''
    const text = [...lines, ...live].join('\n')
    if (clear || text) this.stream.write(`${clear}${text}${text ? '\n' : ''}`)
    this.drawnLines = live.length
  }

  /** The lines of a task and its shown subtasks, each already fitted to `width` cells. */
  private renderNode(node: Node, finished: boolean, width: number): string[] {
    const indent = '  '.repeat(node.depth)
    if (node.status) {
      const message = node.message ? `: ${node.message}` : ''
      const [mark, sgr] = MARKS[node.status]
      const line = fitParts(
        `${indent}${this.paint(sgr, mark)} `,
        node.title,
        ` (${formatDuration(node.durationMs ?? 0)})${message}`,
        width,
      )
      // A finished task collapses to one line, unless it failed: then its failed children show why.
      if (node.status !== 'failed' || finished) {
        const failedChildren = node.children
          .map((c) => this.nodes.get(c)!)
          .filter((c) => c.status === 'failed')
          .flatMap((c) => this.renderNode(c, true, width))
        return [line, ...failedChildren]
      }
      return [line]
    }
    const lines = [
      fitParts(`${indent}${this.paint(CYAN, FRAMES[this.frame]!)} `, node.title, this.progress(node), width),
    ]
    const running = node.children.map((c) => this.nodes.get(c)!).filter((c) => !c.status)
    const shown = running.slice(0, 8)
    for (const child of shown) lines.push(...this.renderNode(child, false, width))
    if (running.length > shown.length)
      lines.push(fitLine(`${indent}  … and ${running.length - shown.length} more`, width))
    return lines
  }

  private progress(node: Node): string {
    if (node.done === undefined) {
      const elapsed = (Date.now() - node.started) / 1000
      return elapsed >= 2 ? ` ${this.paint(DIM, formatDuration(Date.now() - node.started))}` : ''
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
