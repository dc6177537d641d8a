import { Args, Flags } from '@oclif/core'
import { type InspectResult, inspectBundle } from '../bundle/inspect.js'
import { AirgapCommand } from '../cli/base-command.js'
import { formatInspectResult } from '../cli/format/inspect.js'

export default class Inspect extends AirgapCommand<InspectResult> {
  static override summary = "Show a bundle's version, images, charts, files, packages and stages."

  static override description =
    "Reads only bundle.json, the first member, and its signature, so it answers at once whatever the bundle size. It shows the signer's fingerprint as the signature names it (`verify --key` checks it). Use --json for the whole lock."

  static override examples = [
    '<%= config.bin %> inspect astrago-1.0.0.tar',
    '<%= config.bin %> inspect astrago-1.0.0.tar.000 --json',
  ]

  static override args = {
    bundle: Args.string({
      description: 'The bundle file, its first split volume, or the folder it was extracted into.',
      required: true,
    }),
  }

  static override flags = {
    section: Flags.string({
      description: 'Show only one section.',
      options: ['images', 'charts', 'files', 'packages', 'stages'],
    }),
  }

  async run(): Promise<InspectResult> {
    const { args, flags } = await this.parse(Inspect)
    const result = await inspectBundle(args.bundle)
    if (!this.jsonEnabled()) this.log(formatInspectResult(result, flags.section))
    return result
  }
}
