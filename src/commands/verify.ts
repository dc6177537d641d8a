import { Args, Flags } from '@oclif/core'
import { type VerifyResult, verifyBundle } from '../bundle/verify.js'
import { AirgapCommand } from '../cli/base-command.js'
import { baseFlag, keyFlag } from '../cli/flags.js'
import { formatVerifyResult } from '../cli/format/verify.js'

export default class Verify extends AirgapCommand<VerifyResult> {
  static override summary =
    "Check a bundle's signature and its inventory: every member present, complete and matching its sha256."

  static override description =
    'First checks the signature of bundle.json (the inventory): with --key, it must be a good signature by one of those keys; without, a signed bundle must still match its signature and an unsigned one passes with a warning. Then recomputes the sha256 of every member in parallel, with progress, and names the first one that does not match. --quick checks only that every member is present at its size (catches truncated copies in seconds).'

  static override examples = [
    '<%= config.bin %> verify astrago-1.0.0.tar',
    '<%= config.bin %> verify /media/usb/astrago-1.0.0.tar.000 --quick',
    '<%= config.bin %> verify astrago-1.0.0.tar --key release-key.asc',
    '<%= config.bin %> verify astrago-1.1.0-from-1.0.0.tar --base astrago-1.0.0.tar',
  ]

  static override args = {
    bundle: Args.string({
      description: 'The bundle file, its first split volume, or the folder it was extracted into.',
      required: true,
    }),
  }

  static override flags = {
    quick: Flags.boolean({ description: 'Check presence and sizes only, without rehashing.' }),
    key: keyFlag,
    base: baseFlag,
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
      keys: flags.key ?? [],
      ...(flags.base ? { base: flags.base } : {}),
      concurrency: flags.concurrency,
      sink: await this.sink(flags),
      signal: this.signal,
    })
    this.log(formatVerifyResult(result))
    return result
  }
}
