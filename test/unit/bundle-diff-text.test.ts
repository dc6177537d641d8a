import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { unifiedDiff } from '../../src/bundle/diff-text.js'

/** The unified diff `diff` shows for stage manifests, compared with what GNU diff -u prints for the same texts. */
const work = mkdtempSync(join(tmpdir(), 'aa-diff-text-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function gnuDiff(a: string, b: string): string {
  writeFileSync(join(work, 'a'), a)
  writeFileSync(join(work, 'b'), b)
  try {
    execFileSync('diff', [
      '-u',
      '--label',
      'a/x.yaml',
      '--label',
      'b/x.yaml',
      join(work, 'a'),
      join(work, 'b'),
    ])
    return ''
  } catch (error) {
    return (error as { stdout: Buffer }).stdout.toString('utf8')
  }
}

const lines = (n: number, f = (i: number) => `line ${i}`) =>
  `${Array.from({ length: n }, (_, i) => f(i)).join('\n')}\n`

const cases: [string, string, string][] = [
  ['identical', 'a\nb\n', 'a\nb\n'],
  [
    'one line changed',
    'kind: Deployment\nreplicas: 1\nimage: app:1.0\n',
    'kind: Deployment\nreplicas: 2\nimage: app:1.0\n',
  ],
  ['from empty', '', 'a\nb\n'],
  ['to empty', 'a\nb\n', ''],
  ['two far changes', lines(40), lines(40, (i) => (i === 3 || i === 30 ? `changed ${i}` : `line ${i}`))],
  ['two near changes', lines(40), lines(40, (i) => (i === 10 || i === 15 ? `changed ${i}` : `line ${i}`))],
  [
    'insert and delete',
    lines(20),
    lines(20, (i) => `line ${i}`)
      .replace('line 5\n', '')
      .replace('line 12\n', 'line 12\nnew\n'),
  ],
  ['no newline at the end', 'a\nb', 'a\nc'],
  ['newline added', 'a\nb', 'a\nb\n'],
]

describe('unifiedDiff', () => {
  for (const [name, a, b] of cases) {
    it(`matches diff -u: ${name}`, () => {
      expect(unifiedDiff(a, b, { a: 'a/x.yaml', b: 'b/x.yaml' })).toBe(gnuDiff(a, b))
    })
  }

  it('stays correct when the changed middle is too large for the table', () => {
    const a = lines(3000)
    const b = lines(3000, (i) => `other ${i}`)
    const out = unifiedDiff(a, b, { a: 'a', b: 'b' })
    expect(out.split('\n').filter((l) => l.startsWith('-') && !l.startsWith('---'))).toHaveLength(3000)
    expect(out.split('\n').filter((l) => l.startsWith('+') && !l.startsWith('+++'))).toHaveLength(3000)
  })
})
