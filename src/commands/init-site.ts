import { Args, Flags } from '@oclif/core'
import { AirgapCommand } from '../cli/base-command.js'
import { baseFlag } from '../cli/flags.js'
import { formatInitSiteResult } from '../cli/format/init-site.js'
import { type InitSiteResult, initSite } from '../stages/init-site.js'

export default class InitSite extends AirgapCommand<InitSiteResult> {
  static override summary = "Write a bundle's site values file: every value documented, defaults filled in."

  static override description =
    "Generated from the values schemas of the bundle's stages: each value with its description as a comment, defaults filled in, the values the site must give as empty placeholders marked REQUIRED (install refuses the file until they are filled), and the passwords the installer generates left out. Works on a bundle or, before bundling, on a bundle definition. Never overwrites a file without --force."

  static override examples = [
    '<%= config.bin %> init-site astrago-1.0.0.tar',
    '<%= config.bin %> init-site bundles/astrago.yaml --output site.yaml',
    '<%= config.bin %> init-site astrago-1.0.0.tar --output - > site.yaml',
  ]

  static override args = {
    bundle: Args.string({
      description:
        'The bundle (file, first split volume or extracted folder), or a bundle definition (bundles/x.yaml).',
      required: true,
    }),
  }

  static override flags = {
    output: Flags.string({
      char: 'o',
      description: 'The file to write ("-" for stdout). Default: <bundle name>-site.yaml.',
    }),
    force: Flags.boolean({ description: 'Overwrite the output file if it exists.' }),
    base: baseFlag,
  }

  async run(): Promise<InitSiteResult> {
    const { args, flags } = await this.parse(InitSite)
    const result = await initSite({
      source: args.bundle,
      ...(flags.base ? { base: flags.base } : {}),
      output: flags.output,
      force: flags.force,
    })
    if (!this.jsonEnabled()) this.log(formatInitSiteResult(result))
    return result
  }
}
