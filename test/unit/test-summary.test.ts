import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

// scripts/test-summary.mjs reads vitest's JSON report and prints the closing line; CI lands on its exit code.
function summarise(report: object): { status: number; out: string; err: string } {
  const dir = mkdtempSync(join(tmpdir(), 'aa-summary-'))
  const file = join(dir, 'report.json')
  writeFileSync(file, JSON.stringify(report))
  try {
    const out = execFileSync('node', ['scripts/test-summary.mjs', file], { encoding: 'utf8', stdio: 'pipe' })
    return { status: 0, out, err: '' }
  } catch (error) {
    const e = error as { status: number; stdout: string; stderr: string }
    return { status: e.status, out: e.stdout, err: e.stderr }
  }
}

describe('scripts/test-summary.mjs', () => {
  it('passes a run where every test passed', () => {
    const r = summarise({
      numTotalTests: 3,
      numPassedTests: 3,
      numFailedTests: 0,
      numPendingTests: 0,
      numTodoTests: 0,
    })
    expect(r.status).toBe(0)
    expect(r.out.trim()).toBe('3 passed, 0 failed')
  })

  it('fails a run with a skipped test, and says so', () => {
    const r = summarise({
      numTotalTests: 3,
      numPassedTests: 2,
      numFailedTests: 0,
      numPendingTests: 1,
      numTodoTests: 0,
    })
    expect(r.status).not.toBe(0)
    expect(r.out.trim()).toBe('2 passed, 0 failed, 1 skipped')
    expect(r.err).toMatch(/skipped/)
  })

  it('fails a run with a todo test', () => {
    const r = summarise({
      numTotalTests: 2,
      numPassedTests: 1,
      numFailedTests: 0,
      numPendingTests: 0,
      numTodoTests: 1,
    })
    expect(r.status).not.toBe(0)
  })

  it('fails a run that ran no test', () => {
    const r = summarise({
      numTotalTests: 0,
      numPassedTests: 0,
      numFailedTests: 0,
      numPendingTests: 0,
      numTodoTests: 0,
    })
    expect(r.status).not.toBe(0)
  })

  it('fails a run with a failed test', () => {
    const r = summarise({
      numTotalTests: 2,
      numPassedTests: 1,
      numFailedTests: 1,
      numPendingTests: 0,
      numTodoTests: 0,
    })
    expect(r.status).not.toBe(0)
    expect(r.out.trim()).toBe('1 passed, 1 failed')
  })
})
