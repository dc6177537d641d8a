import { Args, Flags } from '@oclif/core'
import { AirgapCommand } from '../cli/base-command.js'
import { baseFlag, caFileFlag, insecureRegistryFlag, usernameFlag } from '../cli/flags.js'
import { formatPushResult } from '../cli/format/push.js'
import { readCredentials } from '../cli/input.js'
import { pushBundleFile } from '../push/push-bundle-file.js'
import type { PushResult } from '../push/push-result.js'
import { parsePushTarget } from '../push/target.js'

export default class Push extends AirgapCommand<PushResult> {
  static override summary = "Copy a bundle's images and charts into a site registry such as Harbor."

  static override description =
    'Every image goes to <registry>/<prefix>/<full original name>:<tag> (docker.io/library/nginx:1.27 → harbor.site/astrago/docker.io/library/nginx:1.27) with its digest unchanged, and every chart to <registry>/<prefix>/charts/<name>:<version>. Blobs the registry already holds are skipped, blobs it holds in another repository are mounted, and the rest are streamed from the bundle file in parallel. Run it again after an interruption to send only what is missing; a finished push sends nothing.'

  static override examples = [
    'echo "$HARBOR_PASSWORD" | <%= config.bin %> push astrago-1.0.0.tar --registry harbor.site:443 --prefix astrago --username harbor.site:443=admin --password-stdin',
    '<%= config.bin %> push /media/usb/astrago-1.0.0.tar.000 --registry harbor.site --prefix astrago --ca-file site-ca.crt',
    '<%= config.bin %> push astrago-1.0.0.tar --registry 10.0.0.5:5000 --insecure-registry 10.0.0.5:5000',
  ]

  static override args = {
    bundle: Args.string({
      description: 'The bundle file, its first split volume, or the folder it was extracted into.',
      required: true,
    }),
  }

  static override flags = {
    base: baseFlag,
    registry: Flags.string({
      char: 'r',
      description: 'The site registry: host[:port].',
      required: true,
      helpValue: 'HOST[:PORT]',
    }),
    prefix: Flags.string({
      description:
        'Repository path in front of every image name: the Harbor project (it must exist), e.g. astrago.',
    }),
    username: usernameFlag({
      description:
        'REGISTRY=USER (or just USER for --registry) to log in with; the password comes from --password-stdin (one line per --username, in order). Without it, ~/.docker/config.json is used.',
      helpValue: 'REGISTRY=USER',
      bareAllowed: true,
    }),
    'password-stdin': Flags.boolean({ description: 'Read the passwords for --username from stdin.' }),
    'insecure-registry': insecureRegistryFlag,
    'ca-file': caFileFlag,
    concurrency: Flags.integer({
      char: 'j',
      description: 'Parallel uploads.',
      default: 8,
      min: 1,
      max: 64,
    }),
  }

  async run(): Promise<PushResult> {
    const { args, flags } = await this.parse(Push)
    const credentials = await readCredentials(
      flags.username,
      flags['password-stdin'],
      parsePushTarget(flags.registry).target.registry,
    )
    const result = await pushBundleFile({
      bundle: args.bundle,
      ...(flags.base ? { base: flags.base } : {}),
      registry: flags.registry,
      prefix: flags.prefix,
      credentials,
      insecureRegistries: flags['insecure-registry'],
      caFiles: flags['ca-file'],
      concurrency: flags.concurrency,
      toolVersion: this.config.version,
      sink: await this.sink(flags),
      signal: this.signal,
    })
    if (!this.jsonEnabled()) this.log(formatPushResult(result))
    return result
  }
}
