import { describe, expect, it } from 'vitest'
import { TtyRenderer } from '../../src/events/render-tty.js'
import { Task } from '../../src/events/tasks.js'

function fakeTerminal() {
  const writes: string[] = []
  const stream = { columns: 120, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the ANSI codes to read what a person sees
  const plain = () => writes.join('').replace(/\u001b\[[0-9;]*[A-Za-z]/g, '')
  return { stream, writes, plain }
}

describe('TtyRenderer', () => {
  it('shows running tasks with byte progress, then collapses finished ones to a line with their outcome', () => {
    const term = fakeTerminal()
    const renderer = new TtyRenderer(term.stream, { intervalMs: 60_000 })
    const root = new Task(renderer, 'Bundle demo 1.0.0')
    const fetch = root.child('Fetch blobs and files', { total: 4 << 20, unit: 'bytes' })
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
    const root = new Task(renderer, 'Install')
    root.child('stage gpu').end('failed', 'Deployment gpu-operator not ready')
    root.end('failed', 'stage gpu failed')
    expect(term.plain()).toMatch(/✖ Install .*stage gpu failed\n\s+✖ stage gpu .*not ready/)
  })
})
