import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import type { LogEvent, ProgressEvent } from '../../src/events/types.js'
import { checkFreeSpace, checkPortFree } from '../../src/install/preflight-machine.js'

describe('machine preflight', () => {
  const work = mkdtempSync(join(tmpdir(), 'astrago-preflight-machine-'))
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it('a busy install port is E_ENVIRONMENT naming the port and suggesting --port; a free one passes', async () => {
    const busy = createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    const port = (busy.address() as { port: number }).port
    try {
      const error = await checkPortFree('127.0.0.1', port).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(AirgapError)
      expect((error as AirgapError).code).toBe('E_ENVIRONMENT')
      expect((error as AirgapError).message).toContain(`Port ${port}`)
      expect((error as AirgapError).hints.join(' ')).toContain('--port')
    } finally {
      await new Promise((resolve) => busy.close(resolve))
    }
    await expect(checkPortFree('127.0.0.1', port)).resolves.toBeUndefined()
  })

  it('warns when the state folder (or its nearest existing parent) has little free space', async () => {
    const events: ProgressEvent[] = []
    const sink = { emit: (e: ProgressEvent) => events.push(e) }
    const missing = join(work, 'not', 'yet')
    const low = await checkFreeSpace({ dir: missing, sink, minBytes: Number.MAX_SAFE_INTEGER })
    expect(low).toMatchObject({ dir: work, low: true })
    expect(low!.freeBytes).toBeGreaterThan(0)
    const warning = events.find((e): e is LogEvent => e.type === 'log' && e.code === 'W_LOW_DISK')
    expect(warning?.level).toBe('warn')
    expect(warning?.data).toMatchObject({ dir: work, stateDir: missing })
    events.length = 0
    const fine = await checkFreeSpace({ dir: work, sink, minBytes: 1 })
    expect(fine?.low).toBe(false)
    expect(events).toEqual([])
  })
})
