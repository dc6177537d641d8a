import { Args, Flags } from '@oclif/core'
import { AirgapCommand } from '../cli/base-command.js'
import { caFileFlag, insecureRegistryFlag, parseSize } from '../cli/flags.js'
import { readCredentials } from '../cli/input.js'
import { formatBytes, formatDuration, formatRate } from '../events/format.js'
import { parseOciAddress } from '../publish/oci-url.js'
import { type PublishResult, publishBundle } from '../publish/publish-bundle.js'

/** `astrago-airgap publish`: a bundle file into an OCI registry, as one artifact (docs/release.md). */
export default class Publish extends AirgapCommand<PublishResult> {
  static override summary = 'Publish a bundle file to an OCI registry as an artifact.'

  static override description =
    'The bundle becomes one OCI artifact (artifactType application/vnd.astrago.airgap.bundle.v1): bundle.json as its config, and the file in chunks (512 MiB by default) as its layers, with the bundle name, version, sha256 and, for a signed bundle, the fingerprint of its signer as annotations (a signature that no longer matches bundle.json is refused). Uploads are resumable: run the command again after an interruption and it continues; blobs the registry already holds are not sent, and publishing a bundle the tag already holds sends nothing. Get it back with `astrago-airgap pull`, or with any OCI client (oras pull).'

  static override examples = [
    'echo "$HARBOR_PASSWORD" | <%= config.bin %> publish astrago-1.0.0.tar oci://harbor.example/releases/astrago:1.0.0 --username harbor.example=release --password-stdin',
    '<%= config.bin %> publish astrago-1.0.0.tar oci://10.0.0.5:5000/releases/astrago --insecure-registry 10.0.0.5:5000',
  ]

  static override args = {
    bundle: Args.string({ description: 'The bundle file, or its first split volume.', required: true }),
    target: Args.string({
      description: 'oci://REGISTRY[:PORT]/REPOSITORY[:TAG]; the tag defaults to the bundle version.',
      required: true,
    }),
  }

  static override flags = {
    'chunk-size': Flags.string({
      description: 'Bytes per layer (e.g. 512M, 1G): smaller chunks suit registries with blob size limits.',
      default: '512M',
    }),
    username: Flags.string({
      description:
        'REGISTRY=USER (or just USER for the target registry) to log in with; the password comes from --password-stdin. Without it, ~/.docker/config.json is used.',
      multiple: true,
      helpValue: 'REGISTRY=USER',
    }),
    'password-stdin': Flags.boolean({ description: 'Read the passwords for --username from stdin.' }),
    'insecure-registry': insecureRegistryFlag,
    'ca-file': caFileFlag,
    concurrency: Flags.integer({
      char: 'j',
      description: 'Parallel chunk uploads.',
      default: 4,
      min: 1,
      max: 32,
    }),
  }

  async run(): Promise<PublishResult> {
    const { args, flags } = await this.parse(Publish)
    const credentials = await readCredentials(
      flags.username,
      flags['password-stdin'],
      parseOciAddress(args.target, 'publish').registry,
    )
    const result = await publishBundle({
      bundle: args.bundle,
      target: args.target,
      chunkSize: parseSize(flags['chunk-size']),
      credentials,
      insecureRegistries: flags['insecure-registry'],
      caFiles: flags['ca-file'],
      concurrency: flags.concurrency,
      toolVersion: this.config.version,
      sink: await this.sink(flags),
      signal: this.signal,
    })
    if (!this.jsonEnabled()) {
      this.log(
        [
          result.status === 'present'
            ? `${result.reference} already holds ${result.name} ${result.version}; nothing sent`
            : `Published ${result.name} ${result.version} to ${result.reference}`,
          `  digest ${result.digest}`,
          `  bundle ${result.bundleDigest} (${formatBytes(result.size)} in ${result.chunks} chunks)`,
          result.signer
            ? `  signed by ${result.signer} (matches bundle.json; recorded as io.astrago.airgap.bundle.signer)`
            : '  not signed',
          `  ${result.blobsUploaded} blobs uploaded (${formatBytes(result.bytesUploaded)}), ${result.blobsSkipped} already there, in ${formatDuration(result.durationMs)}${result.bytesUploaded ? `, ${formatRate(result.bytesPerSecond)}` : ''}`,
        ].join('\n'),
      )
    }
    return result
  }
}
