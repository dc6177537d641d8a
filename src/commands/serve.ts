import cluster from 'node:cluster'
import { realpathSync } from 'node:fs'
import { isSea } from 'node:sea'
import { Args, Flags } from '@oclif/core'
import { AirgapCommand } from '../cli/base-command.js'
import { baseFlag } from '../cli/flags.js'
import { formatServiceInstalled, formatServiceRemoved, formatServing } from '../cli/format/serve.js'
import { AirgapError } from '../errors.js'
import { type ServingBundle, serveBundle } from '../serve/serve-bundle.js'
import { runServeWorkerProcess, type WorkerCommand } from '../serve/serve-workers.js'
import {
  installServeService,
  type ServeServiceResult,
  uninstallServeService,
} from '../serve/systemd-service.js'

type ServeResult =
  | Omit<ServingBundle, 'stop'>
  | { service: ServeServiceResult }
  | { service: { unitFile: string; removed: boolean; systemctl: boolean } }

export default class Serve extends AirgapCommand<ServeResult> {
  static override summary =
    'Serve a bundle on the site: a private OCI registry and a file server, straight from the bundle file.'

  static override description =
    `One HTTPS port: /v2/ is an OCI registry holding every image and chart of the bundle under its full upstream name (containerd mirrors with ?ns= work), and everything else is a file server: /charts (a Helm repository), /files, /repo (package repositories), /ca.crt and /node-setup/ (containerd hosts.toml for every upstream, and node-setup.sh). The site CA is generated once and kept in the state folder. Pushes (with credentials) go to the state folder too. Runs until stopped.`

  static override examples = [
    '<%= config.bin %> serve astrago-1.0.0.tar --advertise 10.0.0.5',
    '<%= config.bin %> serve /media/usb/astrago-1.0.0.tar.000 --port 8443 --htpasswd /etc/astrago-airgap/htpasswd',
    'sudo <%= config.bin %> serve /srv/astrago/astrago-1.0.0.tar --advertise 10.0.0.5 --install-service',
    'sudo <%= config.bin %> serve --uninstall-service',
  ]

  static override args = {
    bundle: Args.string({
      description:
        'The bundle file, its first split volume, or the folder it was extracted into (not needed with --uninstall-service).',
      required: false,
    }),
  }

  static override flags = {
    base: baseFlag,
    host: Flags.string({ description: 'Address to listen on.', default: '0.0.0.0' }),
    port: Flags.integer({ char: 'p', description: 'Port to listen on.', default: 8443, min: 0, max: 65535 }),
    advertise: Flags.string({
      description:
        'Host name or IP nodes use to reach this server (certificate SANs; the first goes into node setup). Repeatable. Default: this machine’s addresses.',
      multiple: true,
    }),
    'state-dir': Flags.string({
      description: 'Folder for the site CA and pushed images (default: beside the bundle).',
    }),
    insecure: Flags.boolean({
      description:
        'Plain HTTP, no TLS (registry passwords then cross the network in cleartext; serve warns).',
    }),
    'tls-cert': Flags.string({
      description: 'Server certificate (PEM) from the site’s own PKI, instead of the site CA.',
    }),
    'tls-key': Flags.string({ description: 'Its private key (PEM).' }),
    htpasswd: Flags.string({ description: 'bcrypt htpasswd file of users allowed to push (htpasswd -B).' }),
    user: Flags.string({
      description:
        'Create a registry user allowed to push (a random password, kept in the state folder). Repeatable.',
      multiple: true,
    }),
    'no-anonymous-pull': Flags.boolean({ description: 'Require credentials to pull too.' }),
    workers: Flags.integer({
      description:
        'Processes answering pulls on the port (each on a core of its own); this one keeps everything else. 1: this process alone.',
      default: 1,
      min: 1,
      max: 64,
    }),
    'verify-full': Flags.boolean({
      description: 'Rehash every member before serving (default: a quick check of presence and sizes).',
    }),
    'install-service': Flags.boolean({
      description:
        'Instead of serving now, write, enable and start a systemd unit that serves the bundle with these flags at every boot, restarted on failure (needs root).',
      exclusive: ['uninstall-service'],
    }),
    'uninstall-service': Flags.boolean({
      description: 'Stop, disable and remove the systemd unit written by --install-service.',
    }),
    root: Flags.string({
      description:
        'With --install-service/--uninstall-service: the root folder holding etc/systemd/system (default /; systemctl is only run for /).',
      hidden: true,
    }),
  }

  async run(): Promise<ServeResult> {
    const { args, flags } = await this.parse(Serve)
    if (cluster.isWorker) {
      // A worker of `serve --workers` (src/serve/serve-workers.ts): the primary sends it what to serve.
      await runServeWorkerProcess(this.signal)
      this.exit(Number(process.exitCode ?? 0))
    }
    if (flags['uninstall-service']) {
      const removed = await uninstallServeService(flags.root ? { root: flags.root } : {})
      if (!this.jsonEnabled()) this.log(formatServiceRemoved(removed))
      return { service: removed }
    }
    if (!args.bundle)
      throw new AirgapError('E_USAGE', 'Give the bundle to serve.', {
        hints: ['astrago-airgap serve <bundle.tar> [--install-service]'],
      })
    if (flags['install-service']) {
      const service = await installServeService({
        bundle: args.bundle,
        program: isSea()
          ? [process.execPath]
          : [process.execPath, ...process.execArgv, realpathSync(process.argv[1] ?? '')],
        flags: {
          ...(flags.base ? { base: flags.base } : {}),
          host: flags.host,
          port: flags.port,
          ...(flags.advertise ? { advertise: flags.advertise } : {}),
          ...(flags['state-dir'] ? { stateDir: flags['state-dir'] } : {}),
          insecure: flags.insecure,
          ...(flags['tls-cert'] ? { tlsCert: flags['tls-cert'] } : {}),
          ...(flags['tls-key'] ? { tlsKey: flags['tls-key'] } : {}),
          ...(flags.htpasswd ? { htpasswd: flags.htpasswd } : {}),
          ...(flags.user ? { users: flags.user } : {}),
          anonymousPull: !flags['no-anonymous-pull'],
          verifyFull: flags['verify-full'],
          workers: flags.workers,
        },
        ...(flags.root ? { root: flags.root } : {}),
      })
      if (!this.jsonEnabled()) this.log(formatServiceInstalled(service))
      return { service }
    }
    const serving = await serveBundle({
      bundle: args.bundle,
      ...(flags.base ? { base: flags.base } : {}),
      host: flags.host,
      port: flags.port,
      advertise: flags.advertise,
      stateDir: flags['state-dir'],
      insecure: flags.insecure,
      tlsCertFile: flags['tls-cert'],
      tlsKeyFile: flags['tls-key'],
      htpasswdFile: flags.htpasswd,
      users: flags.user,
      anonymousPull: !flags['no-anonymous-pull'],
      verify: flags['verify-full'] ? 'full' : 'quick',
      ...(flags.workers > 1 ? { workers: { count: flags.workers, command: workerCommand() } } : {}),
      sink: await this.sink(flags),
      signal: this.signal,
    })
    const { stop, ...result } = serving
    if (this.jsonEnabled()) this.logJson({ type: 'serving', serving: result })
    else this.log(formatServing(result))
    await new Promise<void>((resolve) => {
      if (this.signal.aborted) resolve()
      this.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    await stop()
    return result
  }
}

/**
 * How a worker runs this same command: node with this CLI's script and its arguments; the self-contained installer
 * (where the executable itself stands in argv[1]) with `serve` as cluster's module argument, so that the worker's
 * command line reads `<installer> serve …` as this one does.
 */
function workerCommand(): WorkerCommand {
  return isSea()
    ? { exec: 'serve', args: process.argv.slice(3) }
    : { exec: realpathSync(process.argv[1] ?? ''), args: process.argv.slice(2) }
}
