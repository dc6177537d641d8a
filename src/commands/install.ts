import { Args, Flags } from '@oclif/core'
import { AirgapCommand } from '../cli/base-command.js'
import {
  baseFlag,
  caFileFlag,
  concurrencyFlag,
  insecureRegistryFlag,
  keyFlag,
  usernameFlag,
} from '../cli/flags.js'
import { formatInstallResult } from '../cli/format/install.js'
import { readCredentials } from '../cli/input.js'
import { kubeFlags } from '../cli/kubeconfig.js'
import { type InstallBundleResult, installBundle } from '../install/install-bundle.js'

export default class Install extends AirgapCommand<InstallBundleResult> {
  static override summary =
    'Install a bundle on the site: verify it, serve it, optionally push it into Harbor, apply its stages.'

  static override description =
    `Checks the bundle (a quick check of every member by default; --verify-full rehashes everything), serves it as the site registry and file server while the stages are applied, copies its images into the site's registry with --push-to, and applies the stages in order with readiness waits. State is kept in the cluster: run it again to resume at the first unfinished stage; a finished install is checked and left alone; a newer bundle upgrades and prunes what it no longer ships.`

  static override examples = [
    '<%= config.bin %> install astrago-1.0.0.tar --values site.yaml --advertise 10.0.0.5',
    '<%= config.bin %> install astrago-1.0.0.tar --values site.yaml --dry-run',
    'echo "$HARBOR_PASSWORD" | <%= config.bin %> install astrago-1.0.0.tar --values site.yaml --push-to harbor.site:443 --push-prefix astrago --username harbor.site:443=admin --password-stdin --relocate-images',
  ]

  static override args = {
    bundle: Args.string({
      description: 'The bundle file, its first split volume, or the folder it was extracted into.',
      required: true,
    }),
  }

  static override flags = {
    ...kubeFlags,
    base: baseFlag,
    values: Flags.string({ char: 'f', description: 'Site values (YAML), validated against every stage.' }),
    'dry-run': Flags.boolean({
      description: 'Show the plan (stages, objects, charts, images) without touching anything.',
    }),
    'verify-full': Flags.boolean({ description: 'Rehash every member first instead of the quick check.' }),
    key: keyFlag,
    'skip-preflight': Flags.boolean({
      description: 'Skip the cluster checks before stage 1 (experts only).',
    }),
    'no-audit': Flags.boolean({
      description:
        'Skip the air-gap audit after the stages (by default an image of the installed workloads that is not in the bundle fails the install).',
    }),
    reapply: Flags.boolean({
      description: 'Apply every stage again even if this bundle is installed (repairs deleted objects).',
    }),
    'no-serve': Flags.boolean({
      description: 'Do not serve the bundle (the cluster pulls from a running `serve` or the pushed copies).',
    }),
    'site-url': Flags.string({
      description:
        'With --no-serve: the running site server (https://HOST:PORT) the stages point the GPU driver at; its CA comes from --state-dir.',
      helpValue: 'https://HOST:PORT',
    }),
    host: Flags.string({ description: 'Address the site server listens on.', default: '0.0.0.0' }),
    port: Flags.integer({ description: 'Port of the site server.', default: 8443, min: 0, max: 65535 }),
    advertise: Flags.string({
      description: 'Host name or IP nodes use to reach the site server. Repeatable.',
      multiple: true,
    }),
    'state-dir': Flags.string({
      description: 'Folder for the site CA and pushed images (default: beside the bundle).',
    }),
    insecure: Flags.boolean({ description: 'Serve plain HTTP, no TLS.' }),
    htpasswd: Flags.string({
      description: 'bcrypt htpasswd file of users allowed to push to the site server.',
    }),
    user: Flags.string({
      description:
        'Create a site registry user allowed to push (password kept in the state folder). Repeatable.',
      multiple: true,
    }),
    'keep-serving': Flags.boolean({ description: 'Keep serving after the install, until Ctrl-C.' }),
    'push-to': Flags.string({
      description: 'Copy every image and chart into this registry (e.g. harbor.site:443).',
    }),
    'push-prefix': Flags.string({
      description: 'Repository prefix in that registry (e.g. a Harbor project).',
    }),
    'relocate-images': Flags.boolean({
      description: 'Point the plain manifests’ images at the pushed copies.',
    }),
    username: usernameFlag({ description: 'REGISTRY=USER for --push-to; password from --password-stdin.' }),
    'password-stdin': Flags.boolean({ description: 'Read the passwords for --username from stdin.' }),
    'insecure-registry': insecureRegistryFlag,
    'ca-file': caFileFlag,
    concurrency: concurrencyFlag,
  }

  async run(): Promise<InstallBundleResult> {
    const { args, flags } = await this.parse(Install)
    const credentials = await readCredentials(flags.username, flags['password-stdin'])
    const result = await installBundle({
      bundle: args.bundle,
      ...(flags.base ? { base: flags.base } : {}),
      verify: flags['verify-full'] ? 'full' : 'quick',
      keys: flags.key ?? [],
      kubeconfig: flags.kubeconfig,
      context: flags.context,
      valuesFile: flags.values,
      helm: flags.helm,
      namespace: flags.namespace,
      siteUrl: flags['site-url'],
      stateDir: flags['state-dir'],
      serve: flags['no-serve']
        ? undefined
        : {
            host: flags.host,
            port: flags.port,
            advertise: flags.advertise,
            stateDir: flags['state-dir'],
            insecure: flags.insecure,
            htpasswdFile: flags.htpasswd,
            users: flags.user,
            keep: flags['keep-serving'],
          },
      push: flags['push-to']
        ? {
            registry: flags['push-to'],
            prefix: flags['push-prefix'],
            credentials,
            insecureRegistries: flags['insecure-registry'],
            caFiles: flags['ca-file'],
            concurrency: flags.concurrency,
            relocateImages: flags['relocate-images'],
          }
        : undefined,
      dryRun: flags['dry-run'],
      skipPreflight: flags['skip-preflight'],
      reapply: flags.reapply,
      noAudit: flags['no-audit'],
      toolVersion: this.config.version,
      sink: await this.sink(flags),
      signal: this.signal,
    })
    if (!this.jsonEnabled()) this.log(formatInstallResult(result))
    return result
  }
}
