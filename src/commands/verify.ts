import { Args, Flags } from '@oclif/core'
import { type VerifyResult, verifyBundle } from '../bundle/verify.js'
import { AirgapCommand } from '../cli/base-command.js'
import { formatBytes, formatDuration } from '../events/format.js'

export default class Verify extends AirgapCommand<VerifyResult> {
  static override summary =
    'Check a bundle against its inventory: every member present, complete and matching its sha256.'

  static override description =
    'Recomputes the sha256 of every member in parallel, with progress, and names the first one that does not match. --quick checks only that every member is present at its size (catches truncated copies in seconds).'

  static override examples = [
    '<%= config.bin %> verify astrago-1.0.0.tar',
    '<%= config.bin %> verify /media/usb/astrago-1.0.0.tar.000 --quick',
  ]

  static override args = {
    bundle: Args.string({
      description: 'The bundle file, its first split volume, or the folder it was extracted into.',
      required: true,
    }),
  }

  static override flags = {
    quick: Flags.boolean({ description: 'Check presence and sizes only, without rehashing.' }),
    concurrency: Flags.integer({
      char: 'j',
      description: 'Members hashed in parallel.',
      default: 4,
      min: 1,
      max: 32,
    }),
  }

  async run(): Promise<VerifyResult> {
    const { args, flags } = await this.parse(Verify)
    const result = await verifyBundle({
      path: args.bundle,
      mode: flags.quick ? 'quick' : 'full',
      concurrency: flags.concurrency,
      sink: this.sink(flags),
      signal: this.signal,
    })
    this.log(
      `OK: ${result.name} ${result.version}, ${result.members} members, ${formatBytes(result.bytes)} ${result.mode === 'full' ? 'rehashed' : 'present'} in ${formatDuration(result.durationMs)}`,
    )
    return result
  }
}
