import { Args, Flags } from '@oclif/core'
import { AirgapCommand } from '../cli/base-command.js'
import { caFileFlag, insecureRegistryFlag, keyFlag, parseSize } from '../cli/flags.js'
import { formatPullResult } from '../cli/format/pull.js'
import { readCredentials } from '../cli/input.js'
import { parseOciAddress } from '../publish/oci-url.js'
import { type PullResult, pullBundle } from '../publish/pull-bundle.js'

/** `astrago-airgap pull`: a published bundle back from an OCI registry, byte for byte (docs/release.md). */
export default class Pull extends AirgapCommand<PullResult> {
  static override summary = 'Pull a published bundle from an OCI registry into a file.'

  static override description =
    'Downloads the chunks of a bundle published with `astrago-airgap publish` in parallel, checks each against its digest and the whole file against the bundle sha256, and writes the identical file (or split volumes of it with --split-size). The signature of bundle.json is checked as verify checks it, as soon as the first chunk holds it and again on the finished file: with --key it must be by one of those keys, and a bundle that is not stops the pull before the other chunks are downloaded. An interrupted pull continues where it stopped when run again; a file already complete is checked and kept.'

  static override examples = [
    '<%= config.bin %> pull oci://harbor.example/releases/astrago:1.0.0 --output-dir /srv/bundles',
    '<%= config.bin %> pull oci://harbor.example/releases/astrago@sha256:… --output-dir /media/usb --split-size 4G',
    '<%= config.bin %> pull oci://harbor.example/releases/astrago:1.0.0 --output-dir /srv/bundles --key astrago-release.asc',
  ]

  static override args = {
    source: Args.string({
      description: 'oci://REGISTRY[:PORT]/REPOSITORY:TAG or oci://REGISTRY[:PORT]/REPOSITORY@sha256:DIGEST.',
      required: true,
    }),
  }

  static override flags = {
    'output-dir': Flags.string({
      char: 'o',
      description: 'Folder to write the bundle into (under the file name it was published with).',
      required: true,
    }),
    'split-size': Flags.string({
      description: 'Write volumes of this size (e.g. 4G for FAT32) instead of one file.',
    }),
    username: Flags.string({
      description:
        'REGISTRY=USER (or just USER for the source registry) to log in with; the password comes from --password-stdin. Without it, ~/.docker/config.json is used.',
      multiple: true,
      helpValue: 'REGISTRY=USER',
    }),
    'password-stdin': Flags.boolean({ description: 'Read the passwords for --username from stdin.' }),
    'insecure-registry': insecureRegistryFlag,
    'ca-file': caFileFlag,
    key: keyFlag,
    concurrency: Flags.integer({
      char: 'j',
      description: 'Parallel chunk downloads.',
      default: 4,
      min: 1,
      max: 32,
    }),
  }

  async run(): Promise<PullResult> {
    const { args, flags } = await this.parse(Pull)
    const credentials = await readCredentials(
      flags.username,
      flags['password-stdin'],
      parseOciAddress(args.source, 'pull').registry,
    )
    const result = await pullBundle({
      source: args.source,
      outputDir: flags['output-dir'],
      splitSize: flags['split-size'] ? parseSize(flags['split-size']) : undefined,
      credentials,
      insecureRegistries: flags['insecure-registry'],
      caFiles: flags['ca-file'],
      concurrency: flags.concurrency,
      keys: flags.key ?? [],
      toolVersion: this.config.version,
      sink: await this.sink(flags),
      signal: this.signal,
    })
    if (!this.jsonEnabled()) this.log(formatPullResult(result))
    return result
  }
}
