import { Command, Errors, Flags, type Interfaces } from '@oclif/core'
import { AirgapError, toAirgapError } from '../errors.js'
import { JsonRenderer } from '../events/render-json.js'
import { PlainRenderer } from '../events/render-plain.js'
import type { TtyRenderer } from '../events/render-tty.js'
import { type EventSink, silentSink } from '../events/types.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof AirgapCommand)['baseFlags'] & T['flags']
>

/**
 * The base of every astrago-airgap command. It owns the three things commands must not do themselves: choosing how
 * progress is shown (plain lines on stderr, NDJSON on stdout with --json, nothing with --quiet), turning errors into
 * a message and an exit code (docs/exit-codes.md), and turning Ctrl-C into an AbortSignal the core honours (a second
 * Ctrl-C ends the process at once). The terminal renderer is stopped, and the cursor shown, on every way out.
 */
export abstract class AirgapCommand<T> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    quiet: Flags.boolean({
      char: 'q',
      description: 'Print only the result and errors, no progress.',
      helpGroup: 'GLOBAL',
    }),
    verbose: Flags.boolean({ description: 'Also show debug messages.', helpGroup: 'GLOBAL' }),
  }

  private readonly abortController = new AbortController()
  // The handler stays installed until the command ends, so a library that acts on a signal only when it holds the
  // last handler (signal-exit, which the cursor restore uses) leaves the first Ctrl-C to the abort.
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (!this.abortController.signal.aborted) {
      this.abortController.abort(new AirgapError('E_INTERRUPTED', 'Interrupted by the user.'))
      return
    }
    this.renderer?.stop()
    this.removeSignalHandlers()
    process.kill(process.pid, signal)
  }

  /** Aborted on Ctrl-C / SIGTERM: pass it to every core call. */
  protected get signal(): AbortSignal {
    return this.abortController.signal
  }

  protected override async init(): Promise<void> {
    await super.init()
    process.on('SIGINT', this.onSignal)
    process.on('SIGTERM', this.onSignal)
  }

  private removeSignalHandlers(): void {
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
  }

  private renderer: TtyRenderer | undefined

  protected override async finally(error: Error | undefined): Promise<void> {
    this.renderer?.stop()
    this.removeSignalHandlers()
    await super.finally(error)
  }

  abstract override run(): Promise<T>

  /**
   * The event sink the command hands to the core, chosen by --json / --quiet. The terminal renderer (and the
   * string-width tables it measures with, about 3 MiB) is loaded only when it is the one chosen.
   */
  protected async sink(flags: { quiet?: boolean; verbose?: boolean }): Promise<EventSink> {
    if (this.jsonEnabled()) return new JsonRenderer((line) => process.stdout.write(`${line}\n`))
    if (flags.quiet) return silentSink
    if (process.stderr.isTTY && !process.env.CI && process.env.TERM !== 'dumb') {
      const { TtyRenderer } = await import('../events/render-tty.js')
      this.renderer = new TtyRenderer(process.stderr, { verbose: flags.verbose })
      return this.renderer
    }
    return new PlainRenderer((line) => process.stderr.write(`${line}\n`), { verbose: flags.verbose })
  }

  /** --json results are one NDJSON line, so they can follow the progress events on stdout. */
  protected override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json)}\n`)
  }

  protected override toSuccessJson(result: unknown): unknown {
    return { type: 'result', result }
  }

  protected override toErrorJson(error: unknown): unknown {
    const e = describeError(error)
    return { type: 'error', error: { code: e.code, message: e.message, hints: e.hints, data: e.data } }
  }

  protected override async catch(error: Interfaces.CommandError): Promise<void> {
    const e = describeError(error)
    process.exitCode = e.exitCode
    // The live task tree is finished first, so its last redraw cannot overwrite the error below it.
    this.renderer?.stop()
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(error))
      return
    }
    const lines = [`Error [${e.code}]: ${e.message}`, ...e.hints.map((hint) => `  hint: ${hint}`)]
    if (e.code === 'E_INTERNAL' && process.env.DEBUG && e.cause instanceof Error && e.cause.stack)
      lines.push(e.cause.stack)
    process.stderr.write(`${lines.join('\n')}\n`)
  }
}

/**
 * oclif's own parse errors become usage errors; everything else goes through toAirgapError. An error thrown by a flag's
 * parser (src/cli/flag-*.ts) comes back with oclif's "Parsing --FLAG" wrapped around its message: it is unwrapped so
 * the message names the flag once.
 */
export function describeError(error: unknown): AirgapError {
  if (error instanceof AirgapError) {
    const wrapped = /^Parsing (--[\w-]+) *\n\t([\s\S]*?)\n+See more help with --help$/.exec(error.message)
    if (wrapped)
      error.message = wrapped[2]!.startsWith(wrapped[1]!) ? wrapped[2]! : `${wrapped[1]}: ${wrapped[2]}`
  }
  if (error instanceof Errors.CLIError && !(error instanceof AirgapError)) {
    const oclifExit = (error as Errors.CLIError).oclif?.exit
    if (oclifExit === 2 || /flag|argument|Missing|Unexpected|Expected/i.test(error.message)) {
      return new AirgapError('E_USAGE', error.message.replace(/\n+See more help with --help$/, ''), {
        hints: ['Run the command with --help to see its flags and arguments.'],
        cause: error,
      })
    }
  }
  return toAirgapError(error)
}
