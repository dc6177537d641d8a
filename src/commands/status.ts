import { Flags } from '@oclif/core'
import { AirgapCommand } from '../cli/base-command.js'
import { formatInstallStatus, formatServiceStatus } from '../cli/format/status.js'
import { kubeFlags } from '../cli/kubeconfig.js'
import { AirgapError } from '../errors.js'
import { type ServeServiceStatus, serveServiceStatus } from '../serve/systemd-service.js'
import { readInstallState } from '../stages/install-status.js'
import type { InstallState } from '../stages/state.js'

type StatusResult = (InstallState & { service?: ServeServiceStatus }) | { service: ServeServiceStatus }

export default class Status extends AirgapCommand<StatusResult> {
  static override summary =
    'Show what is installed on the cluster: bundle, version, and each stage’s status; and the site server service.'

  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status --kubeconfig /etc/kubernetes/admin.conf --json',
    '<%= config.bin %> status --service',
  ]

  static override flags = {
    ...kubeFlags,
    service: Flags.boolean({
      description:
        'Only the site server service of this machine (serve --install-service): installed, running, answering. No cluster needed.',
    }),
    root: Flags.string({
      description: 'The root folder holding etc/systemd/system (default /).',
      hidden: true,
    }),
  }

  async run(): Promise<StatusResult> {
    const { flags } = await this.parse(Status)
    const service = await serveServiceStatus(flags.root ? { root: flags.root } : {})
    if (flags.service) {
      if (!this.jsonEnabled()) this.log(formatServiceStatus(service))
      return { service }
    }
    const state = await readInstallState({
      kubeconfig: flags.kubeconfig,
      context: flags.context,
      namespace: flags.namespace,
      signal: this.signal,
    })
    if (!state) {
      throw new AirgapError(
        'E_CLUSTER',
        `Nothing is installed: there is no install state in namespace ${flags.namespace}.`,
        {
          hints: [
            'Install a bundle with `astrago-airgap install <bundle>`, or give the installer’s namespace with -n.',
          ],
        },
      )
    }
    if (!this.jsonEnabled()) this.log(formatInstallStatus(state, service))
    return service.installed ? { ...state, service } : state
  }
}
