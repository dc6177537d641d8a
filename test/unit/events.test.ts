import { describe, expect, it } from 'vitest'
import { formatBytes, formatDuration } from '../../src/events/format.js'
import { JsonRenderer } from '../../src/events/render-json.js'
import { PlainRenderer } from '../../src/events/render-plain.js'
import { Task } from '../../src/events/tasks.js'
import type { ProgressEvent } from '../../src/events/types.js'

function recorder() {
  const events: ProgressEvent[] = []
  return { events, sink: { emit: (e: ProgressEvent) => events.push(e) } }
}

describe('Task', () => {
  it('emits start, progress and end with a duration, children pointing at their parent', async () => {
    const { events, sink } = recorder()
    const parent = new Task(sink, 'fetch')
    const child = parent.child('layer', { total: 10, unit: 'bytes' })
    child.progress(10, 10, 'bytes')
    child.end('done', 'fetched')
    await parent.run(async () => 42)
    expect(events.map((e) => e.type)).toEqual([
      'task.start',
      'task.start',
      'task.progress',
      'task.end',
      'task.end',
    ])
    expect(events[1]).toMatchObject({ parent: parent.id, total: 10, unit: 'bytes' })
    expect(events[3]).toMatchObject({ id: child.id, status: 'done', message: 'fetched' })
    expect(events[4]).toMatchObject({ id: parent.id, status: 'done' })
  })

  it('throttles progress but always reports completion', () => {
    const { events, sink } = recorder()
    const task = new Task(sink, 'download')
    for (let i = 1; i <= 100; i++) task.progress(i, 100, 'bytes', 60_000)
    const progress = events.filter((e) => e.type === 'task.progress')
    expect(progress.length).toBe(2)
    expect(progress.at(-1)).toMatchObject({ done: 100, total: 100 })
  })

  it('marks a task failed when its function throws, and rethrows', async () => {
    const { events, sink } = recorder()
    await expect(new Task(sink, 'x').run(async () => Promise.reject(new Error('nope')))).rejects.toThrow(
      'nope',
    )
    expect(events.at(-1)).toMatchObject({ type: 'task.end', status: 'failed', message: 'nope' })
  })
})

describe('renderers', () => {
  it('plain: indents subtasks and names the outcome', () => {
    const lines: string[] = []
    const renderer = new PlainRenderer((l) => lines.push(l))
    const task = new Task(renderer, 'resolve')
    task.child('nginx').end('skipped', 'already there')
    task.end('failed', 'bad ref')
    expect(lines[0]).toBe('> resolve')
    expect(lines[1]).toBe('  > nginx')
    expect(lines[2]).toMatch(/^ {2}skipped nginx \(\d+ms\): already there$/)
    expect(lines[3]).toMatch(/^FAILED resolve \(\d+ms\): bad ref$/)
  })

  it('json: one parseable object per event, with a time', () => {
    const lines: string[] = []
    const renderer = new JsonRenderer((l) => lines.push(l))
    renderer.emit({ type: 'log', level: 'warn', code: 'W_X', message: 'careful' })
    const parsed = JSON.parse(lines[0]!)
    expect(parsed).toMatchObject({ type: 'log', level: 'warn', code: 'W_X', message: 'careful' })
    expect(Date.parse(parsed.time)).not.toBeNaN()
  })

  it('formats sizes and durations for people', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB')
    expect(formatDuration(250)).toBe('250ms')
    expect(formatDuration(12_300)).toBe('12.3s')
    expect(formatDuration(125_000)).toBe('2m05s')
  })
})
