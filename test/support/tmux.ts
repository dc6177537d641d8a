/**
 * A real terminal for tests: one tmux pane of a given size on a private tmux server (its own socket, no user
 * configuration), running one command. Tests read the screen back with capture-pane (wrapped lines joined, so a line
 * that wrapped shows up as one line wider than the pane) and the pane's state (cursor shown or hidden) with display.
 */
import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)

export class TmuxPane {
  private constructor(
    private readonly socket: string,
    readonly columns: number,
  ) {}

  /** Starts `command` (run by sh) in a detached pane of `columns` × `rows` cells, in `cwd`. */
  static async start(options: {
    command: string
    columns: number
    rows: number
    cwd: string
  }): Promise<TmuxPane> {
    const pane = new TmuxPane(
      `astrago-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      options.columns,
    )
    await pane.tmux(
      'new-session',
      '-d',
      '-x',
      String(options.columns),
      '-y',
      String(options.rows),
      '-c',
      options.cwd,
      options.command,
    )
    return pane
  }

  private async tmux(...args: string[]): Promise<string> {
    // -u: the pane speaks UTF-8 whatever the locale; -f /dev/null: none of the user's settings.
    const { stdout } = await run('tmux', ['-u', '-f', '/dev/null', '-L', this.socket, ...args], {
      timeout: 30_000,
    })
    return stdout
  }

  /** The screen and its scrollback as text, one entry a line, wrapped lines joined; with escapes, the SGR attributes too. */
  async lines(options: { escapes?: boolean } = {}): Promise<string[]> {
    const out = await this.tmux('capture-pane', '-p', '-J', '-S', '-', ...(options.escapes ? ['-e'] : []))
    return out.replace(/\n+$/, '').split('\n')
  }

  /** A tmux format evaluated for the pane, such as '#{pane_pid}'. */
  async display(format: string): Promise<string> {
    return this.tmux('display-message', '-p', format)
  }

  /** Whether the pane's cursor is visible (tmux's cursor_flag). */
  async cursorVisible(): Promise<boolean> {
    return (await this.display('#{cursor_flag}')).trim() === '1'
  }

  async sendKeys(...keys: string[]): Promise<void> {
    await this.tmux('send-keys', ...keys)
  }

  /** Waits until some screen line matches, up to `timeoutMs`; returns the screen. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const lines = await this.lines()
      if (lines.some((line) => pattern.test(line))) return lines
      if (Date.now() > deadline)
        throw new Error(`no line matched ${pattern} in ${timeoutMs} ms; the screen:\n${lines.join('\n')}`)
      await sleep(100)
    }
  }

  /** Ends the pane's processes and the private tmux server. */
  async kill(): Promise<void> {
    await this.tmux('kill-server').catch(() => {})
  }
}
