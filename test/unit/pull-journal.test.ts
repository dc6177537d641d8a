import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { PullJournal } from '../../src/publish/pull-journal.js'
import { endedProcessId } from '../support/process.js'

const work = mkdtempSync(join(tmpdir(), 'pull-journal-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('PullJournal', () => {
  it('removes, with itself, the temporary file a run killed while writing it left behind', async () => {
    const dir = mkdtempSync(join(work, 'out-'))
    const path = join(dir, 'release-1.0.0.tar.pull.json')
    // kill -9 between the write of the temporary file and its rename: another process id than this run's.
    writeFileSync(`${path}.${endedProcessId()}.tmp`, '{"manifest":"sha256:')
    writeFileSync(join(dir, 'release-1.0.0.tar'), 'the bundle')
    writeFileSync(join(dir, 'other.pull.json.757.tmp'), 'not this journal')
    const { journal } = await PullJournal.open(path, `sha256:${'a'.repeat(64)}`, 0)
    journal.progress(0, 10, true)
    journal.complete(0)
    await journal.flush()
    await journal.remove()
    expect(readdirSync(dir).sort()).toEqual(['other.pull.json.757.tmp', 'release-1.0.0.tar'])
  })
})
