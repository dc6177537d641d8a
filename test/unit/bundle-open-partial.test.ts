import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openPartialBundle } from '../../src/bundle/open-partial-bundle.js'
import { planLayout } from '../../src/bundle/plan-layout.js'
import type { ProgressEvent } from '../../src/events/types.js'

/**
 * When a rerun of `bundle` believes its journal: only with the very files the journal was written for, at their
 * planned sizes, at the partial path or (after a crash right after the rename) at the finished one.
 */
describe('openPartialBundle', () => {
  let dir: string
  let output: string
  const plan = planLayout([
    {
      path: 'a.bin',
      size: 3000,
      sha256: 'a'.repeat(64),
      content: { kind: 'bytes', bytes: Buffer.alloc(3000, 1) },
    },
    {
      path: 'b.bin',
      size: 5000,
      sha256: 'b'.repeat(64),
      content: { kind: 'bytes', bytes: Buffer.alloc(5000, 2) },
    },
  ])
  const recorder = () => {
    const events: ProgressEvent[] = []
    return { events, sink: { emit: (e: ProgressEvent) => events.push(e) } }
  }
  const codes = (events: ProgressEvent[]) =>
    events.flatMap((e) => (e.type === 'log' && e.code ? [e.code] : []))

  /** Opens, records `a.bin` as done, closes: what an interrupted run leaves behind. */
  const interrupted = async (splitSize?: number) => {
    const { volumes, journal, resumed } = await openPartialBundle(output, plan, splitSize, recorder().sink)
    await journal.record({ done: ['a.bin'] })
    await volumes.close()
    return resumed
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'astrago-open-partial-'))
    output = join(dir, 'b.tar')
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('resumes the files the journal was written for', async () => {
    expect(await interrupted()).toBe(false)
    const { events, sink } = recorder()
    const { volumes, journal, resumed } = await openPartialBundle(output, plan, undefined, sink)
    await volumes.close()
    expect(resumed).toBe(true)
    expect(journal.state.done.has('a.bin')).toBe(true)
    expect(codes(events)).toEqual(['I_RESUME'])
  })

  it('starts over with a warning when the partial file is gone or replaced', async () => {
    await interrupted()
    rmSync(`${output}.partial`)
    let { events, sink } = recorder()
    let opened = await openPartialBundle(output, plan, undefined, sink)
    await opened.volumes.close()
    expect(opened.resumed).toBe(false)
    expect(opened.journal.state.done.size).toBe(0)
    expect(codes(events)).toEqual(['W_RESUME_DISCARDED'])

    // Another file of the same size put in its place.
    await opened.journal.record({ done: ['a.bin'] })
    const copy = readFileSync(`${output}.partial`)
    rmSync(`${output}.partial`)
    writeFileSync(`${output}.partial`, copy)
    ;({ events, sink } = recorder())
    opened = await openPartialBundle(output, plan, undefined, sink)
    await opened.volumes.close()
    expect(opened.resumed).toBe(false)
    expect(codes(events)).toEqual(['W_RESUME_DISCARDED'])
  })

  it('starts over when the rerun splits the same plan into volumes of another size', async () => {
    await interrupted(4096)
    const { events, sink } = recorder()
    // 10,240 bytes: three volumes either way, of 4,096 bytes then, of 4,000 now.
    const { volumes, resumed } = await openPartialBundle(output, plan, 4000, sink)
    await volumes.close()
    expect(resumed).toBe(false)
    expect(codes(events)).toEqual(['W_RESUME_DISCARDED'])
  })

  it('takes back a finished file whose journal was left behind, and its split volumes one by one', async () => {
    await interrupted()
    renameSync(`${output}.partial`, output)
    let { events, sink } = recorder()
    let opened = await openPartialBundle(output, plan, undefined, sink)
    await opened.volumes.close()
    expect(opened.resumed).toBe(true)
    expect(existsSync(output)).toBe(false)
    expect(codes(events)).toEqual(['I_RESUME'])

    rmSync(`${output}.partial`)
    rmSync(`${output}.journal`)
    await interrupted(4096)
    renameSync(`${output}.partial.000`, `${output}.000`) // a crash between the renames of two volumes
    ;({ events, sink } = recorder())
    opened = await openPartialBundle(output, plan, 4096, sink)
    await opened.volumes.close()
    expect(opened.resumed).toBe(true)
    expect(opened.volumes.paths).toEqual([0, 1, 2].map((i) => `${output}.partial.00${i}`))
    expect(existsSync(`${output}.000`)).toBe(false)
  })

  it('does not trust a journal that does not say which files it was written for', async () => {
    await interrupted()
    writeFileSync(
      `${output}.journal`,
      `${JSON.stringify({ plan: plan.digest })}\n${JSON.stringify({ done: 'a.bin' })}\n`,
    )
    const { events, sink } = recorder()
    const { volumes, resumed } = await openPartialBundle(output, plan, undefined, sink)
    await volumes.close()
    expect(resumed).toBe(false)
    expect(codes(events)).toEqual(['W_RESUME_DISCARDED'])
  })
})
