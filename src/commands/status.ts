import { AirgapCommand } from '../cli/base-command.js'
import { kubeFlags } from '../cli/kubeconfig.js'
import { AirgapError } from '../errors.js'
import { readInstallState } from '../stages/install-status.js'
import type { InstallState } from '../stages/state.js'

export default class Status extends AirgapCommand<InstallState> {
  static override summary = 'Show what is installed on the cluster: bundle, version, and each stage’s status.'

  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status --kubeconfig /etc/kubernetes/admin.conf --json',
  ]

  static override flags = { ...kubeFlags }

  async run(): Promise<InstallState> {
    const { flags } = await this.parse(Status)
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
    if (!this.jsonEnabled()) {
      const lines = [
        `${state.bundle.name} ${state.bundle.version}: ${state.status} (started ${state.startedAt}${state.finishedAt ? `, finished ${state.finishedAt}` : ''})`,
        `  bundle digest ${state.bundle.digest}`,
      ]
      for (const stage of state.stages) {
        const releases = stage.releases.map((r) => `${r.namespace}/${r.name}`).join(', ')
        lines.push(
          `  ${stage.status.padEnd(9)} ${stage.name}: ${stage.objects.length} objects${releases ? `, releases ${releases}` : ''}${stage.error ? ` — ${stage.error}` : ''}`,
        )
      }
      this.log(lines.join('\n'))
    }
    return state
  }
}
