import { Flags } from '@oclif/core'
import { AirgapCommand } from '../cli/base-command.js'
import { formatUninstallResult } from '../cli/format/uninstall.js'
import { kubeFlags } from '../cli/kubeconfig.js'
import { findHelm } from '../helm/find-helm.js'
import { type UninstallResult, uninstallStages } from '../stages/uninstall-stages.js'

export default class Uninstall extends AirgapCommand<UninstallResult> {
  static override summary = 'Remove what the install applied, stage by stage in reverse order.'

  static override description =
    'Works from the install state kept in the cluster; the bundle is not needed. A stopped uninstall can be run again.'

  static override examples = ['<%= config.bin %> uninstall', '<%= config.bin %> uninstall --timeout 600']

  static override flags = {
    ...kubeFlags,
    timeout: Flags.integer({
      description: 'Seconds to wait for each stage’s objects to go.',
      default: 300,
      min: 1,
    }),
    purge: Flags.boolean({
      description:
        'Also remove the passwords generated for this site (kept by default: data volumes that outlive the install still use them).',
    }),
  }

  async run(): Promise<UninstallResult> {
    const { flags } = await this.parse(Uninstall)
    const result = await uninstallStages({
      kubeconfig: flags.kubeconfig,
      context: flags.context,
      helm: findHelm(flags.helm),
      namespace: flags.namespace,
      timeoutMs: flags.timeout * 1000,
      purge: flags.purge,
      sink: await this.sink(flags),
      signal: this.signal,
    })
    if (!this.jsonEnabled()) this.log(formatUninstallResult(result))
    return result
  }
}
