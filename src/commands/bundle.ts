import { join } from 'node:path'
import { isSea } from 'node:sea'
import { Args, Flags } from '@oclif/core'
import { bundleFromDefinition } from '../bundle/bundle-from-definition.js'
import type { CreateBundleResult } from '../bundle/create.js'
import { AirgapCommand } from '../cli/base-command.js'
import { keyValueRecord } from '../cli/flag-key-value.js'
import { chartValuesFromSettings } from '../cli/flag-set.js'
import {
  caFileFlag,
  concurrencyFlag,
  insecureRegistryFlag,
  mirrorFlag,
  mirrorKeyringFlag,
  setFlag,
  splitSizeFlag,
  usernameFlag,
} from '../cli/flags.js'
import { formatBundleResult } from '../cli/format/bundle.js'
import { readCredentials } from '../cli/input.js'
import { loadToolConfig } from '../spec/tool-config.js'

export default class Bundle extends AirgapCommand<CreateBundleResult> {
  static override summary = 'Build one verifiable bundle file from a bundle definition.'

  static override description =
    `Resolves every image (platform-filtered, layers deduplicated), Helm chart (and the images it renders), file and OS package (the dependency closure from signed upstream indices) of the definition to a digest, then writes them into one plain tar: bundle.json (the lock and inventory), an OCI image layout, a Helm chart repository, files, signed apt/rpm repositories and the install stages. Run it again after an interruption to continue where it stopped.`

  static override examples = [
    '<%= config.bin %> bundle bundles/astrago.yaml',
    '<%= config.bin %> bundle bundles/astrago.yaml --split-size 4G --output /media/usb/astrago.tar',
    '<%= config.bin %> bundle bundles/astrago.yaml --mirror docker.io=https://harbor.corp.example/v2/dockerhub-proxy',
    'echo "$NGC_API_KEY" | <%= config.bin %> bundle bundles/astrago.yaml --username \'nvcr.io=$oauthtoken\' --password-stdin',
    '<%= config.bin %> bundle bundles/astrago.yaml --base astrago-1.0.0.tar',
    '<%= config.bin %> bundle bundles/astrago.yaml --mirror https://github.com/xiilab=https://git.corp.example/xiilab',
  ]

  static override args = {
    definition: Args.string({ description: 'The bundle definition (YAML).', required: true }),
  }

  static override flags = {
    output: Flags.string({
      char: 'o',
      description: 'Bundle file to write (default: <name>-<version>.tar in --output-dir).',
    }),
    'output-dir': Flags.string({ description: 'Folder for the bundle file.', default: '.' }),
    platform: Flags.string({
      description: 'Platforms to keep (os/arch[/variant]); overrides the definition. Repeatable.',
      multiple: true,
    }),
    mirror: mirrorFlag,
    config: Flags.string({
      description:
        'A YAML file of mirrors, insecureRegistries and caFiles for this machine (flags add to it).',
      env: 'ASTRAGO_AIRGAP_CONFIG',
    }),
    username: usernameFlag({
      description:
        'REGISTRY=USER to log in with (or HOST=USER for a private git repository of a chart); the password comes from --password-stdin (one line per --username, in order).',
      helpValue: 'REGISTRY=USER',
    }),
    'password-stdin': Flags.boolean({ description: 'Read the passwords for --username from stdin.' }),
    'insecure-registry': insecureRegistryFlag,
    'ca-file': caFileFlag,
    concurrency: concurrencyFlag,
    'split-size': splitSizeFlag,
    helm: Flags.string({
      description: 'The helm binary used to render charts for image discovery (default: helm on PATH).',
    }),
    set: setFlag,
    'mirror-keyring': mirrorKeyringFlag,
    'signing-key': Flags.string({
      description:
        'GnuPG home whose secret key signs bundle.json (the member bundle.json.sig) and the package repositories (default: a key created once in $XDG_DATA_HOME/astrago-airgap/signing-key).',
      env: 'ASTRAGO_AIRGAP_SIGNING_KEY',
    }),
    'no-sign': Flags.boolean({
      description:
        'Leave bundle.json unsigned (no bundle.json.sig); the package repositories are still signed. `verify --key` refuses such a bundle.',
    }),
    installer: Flags.string({
      description:
        'The self-contained installer to carry as the `installer` member, so a site without Node runs `tar -xf BUNDLE installer && ./installer install BUNDLE` (default: the running installer itself, or dist/installer/astrago-airgap-linux-<arch> from scripts/build-installer for the first of the linux/amd64 and linux/arm64 platforms of the bundle, when it exists).',
      exclusive: ['no-installer'],
    }),
    'no-installer': Flags.boolean({ description: 'Carry no installer.' }),
    base: Flags.string({
      description:
        'Write a delta bundle: only what this earlier bundle (its file, first volume, folder, or its bundle.json alone) lacks. The site reads the delta together with that bundle (--base of verify, serve, push and install). Default file name: <name>-<version>-from-<base version>.tar.',
      helpValue: 'BUNDLE',
    }),
  }

  async run(): Promise<CreateBundleResult> {
    const { args, flags } = await this.parse(Bundle)
    const config = await loadToolConfig(flags.config)
    const mirrors = { ...config.mirrors, ...keyValueRecord(flags.mirror) }
    const credentials = await readCredentials(flags.username, flags['password-stdin'])
    const result = await bundleFromDefinition({
      definition: args.definition,
      output: flags.output,
      outputDir: flags['output-dir'],
      platforms: flags.platform,
      mirrors,
      credentials,
      insecureRegistries: [...config.insecureRegistries, ...(flags['insecure-registry'] ?? [])],
      caFiles: [...config.caFiles, ...(flags['ca-file'] ?? [])],
      concurrency: flags.concurrency,
      splitSize: flags['split-size'],
      helm: flags.helm,
      chartValues: chartValuesFromSettings(flags.set),
      signingKey: flags['signing-key'],
      ...(flags['no-sign'] ? { sign: false } : {}),
      mirrorKeyrings: keyValueRecord(flags['mirror-keyring']),
      ...(flags.base ? { base: flags.base } : {}),
      ...(flags['no-installer']
        ? {}
        : {
            // Run as the installer itself, the bundle carries this very executable.
            installer:
              flags.installer ??
              (isSea() ? process.execPath : { directory: join(this.config.root, 'dist', 'installer') }),
          }),
      toolVersion: this.config.version,
      sink: await this.sink(flags),
      signal: this.signal,
    })
    if (!this.jsonEnabled()) this.log(formatBundleResult(result))
    return result
  }
}
