import stripAnsi from 'strip-ansi'
import { describe, expect, it } from 'vitest'
import { cellWidth, fitLine, fitParts, printable } from '../../src/events/terminal-line.js'

const RESET = '\u001b[0m'
const LINES = [
  'plain ascii title that goes on and on',
  '\u001b[36m⠋\u001b[0m 📦 イメージを取得 \u001b[2m漢字漢字漢字 12s\u001b[0m tail',
  '  \u001b[32m✔\u001b[0m 🚀 배포 단계 gpu-operator (3s): 🐳 컨테이너 이미지 준비 완료',
  '\u001b[31m✖ failed in red with no reset until the very end 中文字符中文字符\u001b[0m',
  '🇯🇵🇰🇷 flags, 👩‍👩‍👧 a family, ❤️ a heart, and é (e + combining accent)',
  'あいうえおかきくけこ|end',
]

describe('fitLine', () => {
  for (const line of LINES) {
    it(`never goes past the width, in cells, for ${JSON.stringify(stripAnsi(line).slice(0, 20))}…`, () => {
      for (let columns = 1; columns <= cellWidth(line) + 2; columns += 1) {
        const fitted = fitLine(line, columns)
        expect(cellWidth(fitted), `at ${columns} columns: ${JSON.stringify(fitted)}`).toBeLessThanOrEqual(
          columns,
        )
        const visible = stripAnsi(fitted)
        if (cellWidth(line) <= columns) expect(visible).toBe(stripAnsi(line))
        else {
          expect(visible.endsWith('…'), `at ${columns} columns: ${JSON.stringify(fitted)}`).toBe(true)
          expect(stripAnsi(line).startsWith(visible.slice(0, -1))).toBe(true)
        }
        // A line with colour ends with a reset, whatever the cut, so no colour spills onto the next line.
        if (line.includes('\u001b')) expect(fitted.endsWith(RESET)).toBe(true)
        else expect(fitted).not.toContain('\u001b')
      }
    })
  }

  it('cuts where a wide character would straddle the edge, leaving the cell free rather than overflowing', () => {
    expect(fitLine('あいうえおかきくけこ|end', 20)).toBe('あいうえおかきくけ…')
    expect(fitLine('ab漢字', 4)).toBe('ab…')
  })

  it('closes a colour the cut left open', () => {
    const fitted = fitLine('\u001b[2mdimmed text that is far too long\u001b[0m', 10)
    expect(stripAnsi(fitted)).toBe('dimmed te…')
    expect(fitted.endsWith(RESET)).toBe(true)
  })
})

describe('fitParts', () => {
  const head = '  \u001b[36m⠋\u001b[0m '
  const title = '📦 イメージを取得 docker.io/library/nginx:1.27 漢字漢字'
  const tail = ' ██████████░░░░░░░░░░ 50% 2.0 MiB of 4.0 MiB'

  it('cuts the title first, so the tail stays in view', () => {
    const fitted = fitParts(head, title, tail, 80)
    expect(cellWidth(fitted)).toBeLessThanOrEqual(80)
    expect(stripAnsi(fitted)).toMatch(/^ {2}⠋ 📦 イメージを取得 .*… █+░+ 50% 2\.0 MiB of 4\.0 MiB$/)
    expect(fitted.endsWith(RESET)).toBe(true)
  })

  it('keeps a few cells of the title and cuts the tail when the terminal is too narrow for both', () => {
    for (let columns = 1; columns <= 100; columns += 1) {
      const fitted = fitParts(head, title, tail, columns)
      expect(cellWidth(fitted), `at ${columns}: ${JSON.stringify(fitted)}`).toBeLessThanOrEqual(columns)
      expect(fitted.endsWith(RESET)).toBe(true)
    }
    expect(stripAnsi(fitParts(head, title, tail, 30))).toBe('  ⠋ 📦 イメージ… ██████████░░…')
  })
})

describe('printable', () => {
  it('removes escape sequences and turns control characters into spaces', () => {
    expect(printable('image\u001b[2J\u001b[31mred\u001b[0m\nnext\tline\r\u0007')).toBe('imagered next line  ')
    expect(printable('docker.io/library/nginx:1.27 漢字 🚀')).toBe('docker.io/library/nginx:1.27 漢字 🚀')
  })
})
