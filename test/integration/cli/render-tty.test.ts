/**
 * The terminal renderer in a real terminal: tmux panes of 40 and 200 columns run a small command through the real
 * command base class (test/support/render-tty-driver.ts) whose task titles hold CJK characters and emoji and are wider
 * than the pane. What is left on the screen must fit the pane with no wrapped line, colour must not leak past the
 * renderer, and the cursor must be visible again after the command ends: normally, by an error, by Ctrl-C, by SIGTERM.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import stringWidth from 'string-width'
import { afterEach, describe, expect, it } from 'vitest'
import { TmuxPane } from '../../support/tmux.js'

const ROOT = new URL('../../..', import.meta.url).pathname
// biome-ignore lint/suspicious/noControlCharactersInRegex: SGR sequences in the captured screen
const SGR = /\u001b\[[0-9;:]*m/
const panes: TmuxPane[] = []

afterEach(async () => {
  for (const pane of panes.splice(0)) await pane.kill()
})

/** Runs the driver in a pane; the shell prints `exit=<status>` after it and then keeps the pane open. */
async function startDriver(mode: string, columns: number, env = ''): Promise<TmuxPane> {
  const command = `env -u CI -u NO_COLOR -u FORCE_COLOR ${env} '${process.execPath}' --import tsx test/support/render-tty-driver.ts ${mode}; echo "exit=$?"; exec sleep 600`
  const pane = await TmuxPane.start({ command, columns, rows: 30, cwd: ROOT })
  panes.push(pane)
  return pane
}

function expectFits(lines: string[], columns: number): void {
  for (const line of lines)
    expect(stringWidth(line.trimEnd()), JSON.stringify(line)).toBeLessThanOrEqual(columns)
}

/** The captured screen of a pane after its command ended, checked for what every exit path must leave. */
async function expectCleanExit(pane: TmuxPane, status: number): Promise<string[]> {
  const lines = await pane.waitFor(/^exit=\d+$/)
  expect(lines.at(-1)).toBe(`exit=${status}`)
  // The renderer's lines must fit; an error message after them is printed whole and may wrap, as it should.
  const error = lines.findIndex((line) => line.startsWith('Error ['))
  expectFits(error < 0 ? lines : lines.slice(0, error), pane.columns)
  expect(await pane.cursorVisible()).toBe(true)
  // Whatever the renderer cut, the shell's own line after it has no colour or dimming left on.
  expect((await pane.lines({ escapes: true })).at(-1)).toBe(`exit=${status}`)
  return lines
}

describe.each([40, 200])('the terminal renderer at %i columns', (columns) => {
  it('fits the finished task tree in the pane, in colour, and shows the cursor again', async () => {
    const pane = await startDriver('done', columns)
    const lines = await expectCleanExit(pane, 0)
    const root = lines.find((line) => line.startsWith('✔ 📦 バンドル'))
    expect(root).toContain('…')
    // Where there is room, the title is cut rather than the outcome after it.
    if (columns >= 200)
      expect(root).toMatch(/… \(\d+(\.\d+)?m?s\): 漢字の画像🚀📦🐳한국어 demo-1\.0\.0\.tar$/)
    // Redraws replace the tree in place: no frame of it is left on the screen or pushed into the scrollback.
    expect(lines.filter((line) => line.includes('バンドル'))).toHaveLength(1)
    expect((await pane.lines({ escapes: true })).some((line) => SGR.test(line))).toBe(true)
  })

  it('hides the cursor while tasks run, and after Ctrl-C reports the interruption and shows the cursor', async () => {
    const pane = await startDriver('wait', columns)
    // At 200 columns the byte progress shows after the cut title; at 40 there is room for the start of the title only.
    const running = await pane.waitFor(
      columns >= 200 ? /^\s+. イメージ images .*… [█░]{20} \d+% .*MiB/ : /^\s+. イメージ/,
    )
    expectFits(running, columns)
    expect(await pane.cursorVisible()).toBe(false)
    await pane.sendKeys('C-c')
    const lines = await expectCleanExit(pane, 130)
    expect(lines.some((line) => line.startsWith('Error [E_INTERRUPTED]'))).toBe(true)
    // The tree as it was when interrupted stays, once.
    expect(lines.filter((line) => line.includes('バンドル'))).toHaveLength(1)
  })

  it('leaves an error readable below the task tree and shows the cursor', async () => {
    const pane = await startDriver('fail', columns)
    const lines = await expectCleanExit(pane, 1)
    const error = lines.findIndex((line) => line.startsWith('Error [E_INTERNAL]'))
    expect(error).toBeGreaterThan(0)
    // The tree's last drawing stays above the error, not over it.
    expect(lines.slice(0, error).some((line) => line.includes('バンドル'))).toBe(true)
    expect(lines.slice(error + 1).every((line) => !line.includes('バンドル'))).toBe(true)
  })
})

describe('the terminal renderer, other exits and settings', () => {
  it('shows the cursor again after SIGTERM', async () => {
    const pane = await startDriver('wait', 80)
    await pane.waitFor(/^\s+. イメージ/)
    expect(await pane.cursorVisible()).toBe(false)
    const shell = (await pane.display('#{pane_pid}')).trim()
    const { stdout } = await promisify(execFile)('pgrep', ['-P', shell])
    process.kill(Number(stdout.trim().split('\n')[0]), 'SIGTERM')
    const lines = await expectCleanExit(pane, 130)
    expect(lines.some((line) => line.startsWith('Error [E_INTERRUPTED]'))).toBe(true)
  })

  it('uses no colour with NO_COLOR set, and none with FORCE_COLOR=0', async () => {
    for (const env of ['NO_COLOR=1', 'FORCE_COLOR=0']) {
      const pane = await startDriver('done', 80, env)
      await expectCleanExit(pane, 0)
      const screen = await pane.lines({ escapes: true })
      expect(
        screen.some((line) => line.includes('✔ 📦 バンドル')),
        env,
      ).toBe(true)
      expect(
        screen.filter((line) => SGR.test(line)),
        env,
      ).toEqual([])
    }
  })
})
