import { describe, expect, it } from 'vitest'
import { formatBytes, formatDuration } from '../../src/events/format.js'
import { JsonRenderer } from '../../src/events/render-json.js'
import { PlainRenderer } from '../../src/events/render-plain.js'
import { Task } from '../../src/events/tasks.js'
import { logEvent, type ProgressEvent } from '../../src/events/types.js'

function recorder() {
  const events: ProgressEvent[] = []
  return { events, sink: { emit: (e: ProgressEvent) => events.push(e) } }
}

describe('Task', () => {
  it('emits start, progress and end with a duration, children pointing at their parent', async () => {
    const { events, sink } = recorder()
    const parent = new Task(sink, 'bundle.fetch', 'fetch')
    const child = parent.child('push.artifact', 'layer', { total: 10, unit: 'bytes' })
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

  it('starts a task with its kind and data, after the fields a start always had', () => {
    const { events, sink } = recorder()
    const root = new Task(sink, 'install', 'Install demo 1.0.0', {
      data: { name: 'demo', version: '1.0.0', dryRun: false },
    })
    root.child('stage.apply', 'Stage gpu', { total: 3, unit: 'items', data: { stage: 'gpu' } })
    root.child('install.load', 'Load stages')
    expect(Object.keys(events[1]!)).toEqual([
      'type',
      'id',
      'title',
      'total',
      'unit',
      'parent',
      'kind',
      'data',
    ])
    expect(events[1]).toMatchObject({ parent: root.id, kind: 'stage.apply', data: { stage: 'gpu' } })
    expect(events[0]).toMatchObject({
      kind: 'install',
      data: { name: 'demo', version: '1.0.0', dryRun: false },
    })
    // A kind without data carries no data field at all.
    expect(Object.keys(events[2]!)).toEqual(['type', 'id', 'title', 'parent', 'kind'])
  })

  it('builds a log event at the level the catalogue gives its code', () => {
    expect(logEvent('W_UPLOAD_RESTARTED', 'again')).toEqual({
      type: 'log',
      level: 'warn',
      code: 'W_UPLOAD_RESTARTED',
      message: 'again',
    })
    expect(logEvent('I_SITE_CA', 'made', { file: '/ca.pem' })).toMatchObject({
      level: 'info',
      data: { file: '/ca.pem' },
    })
  })

  it('throttles progress but always reports completion', () => {
    const { events, sink } = recorder()
    const task = new Task(sink, 'apt.download', 'download')
    for (let i = 1; i <= 100; i++) task.progress(i, 100, 'bytes', 60_000)
    const progress = events.filter((e) => e.type === 'task.progress')
    expect(progress.length).toBe(2)
    expect(progress.at(-1)).toMatchObject({ done: 100, total: 100 })
  })

  it('marks a task failed when its function throws, and rethrows', async () => {
    const { events, sink } = recorder()
    await expect(
      new Task(sink, 'verify', 'x').run(async () => Promise.reject(new Error('nope'))),
    ).rejects.toThrow('nope')
    expect(events.at(-1)).toMatchObject({ type: 'task.end', status: 'failed', message: 'nope' })
  })
})

describe('renderers', () => {
  it('plain: indents subtasks and names the outcome', () => {
    const lines: string[] = []
    const renderer = new PlainRenderer((l) => lines.push(l))
    const task = new Task(renderer, 'bundle.charts', 'resolve')
    task.child('bundle.chart', 'nginx').end('skipped', 'already there')
    task.end('failed', 'bad ref')
    expect(lines[0]).toBe('> resolve')
    expect(lines[1]).toBe('  > nginx')
    expect(lines[2]).toMatch(/^ {2}skipped nginx \(\d+ms\): already there$/)
    expect(lines[3]).toMatch(/^FAILED resolve \(\d+ms\): bad ref$/)
  })

  it('json: one parseable object per event, with a time', () => {
    const lines: string[] = []
    const renderer = new JsonRenderer((l) => lines.push(l))
    renderer.emit({ type: 'log', level: 'warn', code: 'W_RETRY', message: 'careful' })
    const parsed = JSON.parse(lines[0]!)
    expect(parsed).toMatchObject({ type: 'log', level: 'warn', code: 'W_RETRY', message: 'careful' })
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
