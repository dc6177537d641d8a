import stripAnsi from 'strip-ansi'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { TtyRenderer } from '../../src/events/render-tty.js'
import { Task } from '../../src/events/tasks.js'
import { cellWidth } from '../../src/events/terminal-line.js'

const HIDE_CURSOR = '\u001b[?25l'
const SHOW_CURSOR = '\u001b[?25h'

function fakeTerminal(columns = 120, isTTY = false) {
  const writes: string[] = []
  const stream = { columns, isTTY, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the ANSI codes to read what a person sees
  const plain = () => writes.join('').replace(/\u001b\[[0-9;]*[A-Za-z]/g, '')
  return { stream, writes, plain }
}

describe('TtyRenderer', () => {
  it('shows running tasks with byte progress, then collapses finished ones to a line with their outcome', () => {
    const term = fakeTerminal()
    const renderer = new TtyRenderer(term.stream, { intervalMs: 60_000 })
    const root = new Task(renderer, 'bundle', 'Bundle demo 1.0.0')
    const fetch = root.child('bundle.fetch', 'Fetch blobs and files', { total: 4 << 20, unit: 'bytes' })
    fetch.progress(2 << 20, 4 << 20, 'bytes', 0)
    renderer.emit({ type: 'log', level: 'warn', message: 'retrying' }) // forces a redraw
    expect(term.plain()).toMatch(/Fetch blobs and files .*50% 2\.0 MiB of 4\.0 MiB/)
    expect(term.plain()).toContain('warning: retrying')
    fetch.end('done')
    root.end('done', 'demo-1.0.0.tar')
    const last = term.writes.at(-1)!
    expect(last).toMatch(/✔.*Bundle demo 1\.0\.0 \(\d+ms\): demo-1\.0\.0\.tar/)
    expect(last).not.toContain('Fetch blobs and files')
  })

  it('keeps a failed subtask visible under its failed parent', () => {
    const term = fakeTerminal()
    const renderer = new TtyRenderer(term.stream, { intervalMs: 60_000 })
    const root = new Task(renderer, 'install', 'Install')
    root.child('stage.apply', 'stage gpu').end('failed', 'Deployment gpu-operator not ready')
    root.end('failed', 'stage gpu failed')
    expect(term.plain()).toMatch(/✖ Install .*stage gpu failed\n\s+✖ stage gpu .*not ready/)
  })

  afterEach(() => {
    vi.unstubAllEnvs()
  })

  it('fits every line in the terminal width counted in cells, and ends each coloured line with a reset', () => {
    const term = fakeTerminal(24)
    const renderer = new TtyRenderer(term.stream, { intervalMs: 60_000, color: true })
    const root = new Task(renderer, 'bundle', '📦 イメージを取得 and a long tail')
    root.child('stage.apply', '🚀 배포 단계 gpu-operator 漢字漢字').end('failed', '컨테이너 이미지 준비 실패')
    renderer.emit({ type: 'log', level: 'warn', message: '警告: 🐳 registry は遅い and more' })
    root.end('failed', '中文字符中文字符中文字符')
    // Each write starts with cursor movement for the redraw; what follows is the lines a person sees.
    const lines = term.writes
      .join('')
      // biome-ignore lint/suspicious/noControlCharactersInRegex: removes the cursor movement between redraws
      .replace(/\u001b\[(\d+A|[02]?[JK]|\?25[lh])/g, '')
      .split('\n')
      .filter(Boolean)
    expect(lines.length).toBeGreaterThanOrEqual(4)
    for (const line of lines) {
      expect(cellWidth(line), JSON.stringify(line)).toBeLessThanOrEqual(24)
      if (line.includes('\u001b')) expect(line.endsWith('\u001b[0m'), JSON.stringify(line)).toBe(true)
    }
  })

  it('uses no colour under NO_COLOR, and colour under FORCE_COLOR', () => {
    const draw = () => {
      const term = fakeTerminal(80, true)
      const renderer = new TtyRenderer(term.stream, { intervalMs: 60_000 })
      const root = new Task(renderer, 'bundle', 'Bundle')
      renderer.emit({ type: 'log', level: 'warn', message: 'slow' })
      root.end('done')
      return term.writes.join('')
    }
    vi.stubEnv('NO_COLOR', '1')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looks for any SGR (colour) sequence
    expect(draw()).not.toMatch(/\u001b\[[0-9;]*m/)
    expect(stripAnsi(draw())).toContain('✔ Bundle')
    vi.stubEnv('FORCE_COLOR', '1')
    expect(draw()).toContain('\u001b[32m✔\u001b[0m')
  })

  it('hides the cursor while tasks run and shows it again when they end', () => {
    const term = fakeTerminal(80, true)
    const renderer = new TtyRenderer(term.stream, { intervalMs: 60_000 })
    const root = new Task(renderer, 'bundle', 'Bundle')
    expect(term.writes.join('')).toContain(HIDE_CURSOR)
    expect(term.writes.join('')).not.toContain(SHOW_CURSOR)
    root.end('done')
    const all = term.writes.join('')
    expect(all.lastIndexOf(SHOW_CURSOR)).toBeGreaterThan(all.lastIndexOf(HIDE_CURSOR))
  })

  it('shows the cursor when stopped with tasks still running, and draws nothing after it', () => {
    const term = fakeTerminal(80, true)
    const renderer = new TtyRenderer(term.stream, { intervalMs: 60_000 })
    const root = new Task(renderer, 'install', 'Install')
    root.child('stage.apply', 'stage gpu')
    renderer.stop()
    expect(term.writes.at(-1)).toBe(SHOW_CURSOR)
    const count = term.writes.length
    renderer.stop()
    root.end('failed', 'interrupted')
    expect(term.writes.length).toBe(count)
  })

  it('prints titles from a bundle as plain text: no escape codes of theirs, no extra lines', () => {
    const term = fakeTerminal(80)
    const renderer = new TtyRenderer(term.stream, { intervalMs: 60_000 })
    const root = new Task(renderer, 'bundle.images', 'image \u001b[2J\u001b[Hevil\nsecond line')
    root.end('done', 'ok\r\u001b[31mred')
    const out = term.writes.join('')
    expect(out).not.toContain('\u001b[2J')
    expect(out).not.toContain('\u001b[31m')
    expect(out.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/image evil second line \(\d+ms\): ok red$/),
    ])
  })
})
