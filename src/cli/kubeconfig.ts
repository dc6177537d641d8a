import { homedir } from 'node:os'
import { join } from 'node:path'
import { Flags } from '@oclif/core'

/** The kubeconfig flags every cluster command shares; the default follows kubectl ($KUBECONFIG, ~/.kube/config). */
export const kubeFlags = {
  kubeconfig: Flags.string({
    description: 'Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).',
    default: async () => process.env.KUBECONFIG?.split(':')[0] || join(homedir(), '.kube', 'config'),
  }),
  context: Flags.string({ description: 'Kubeconfig context (default: its current context).' }),
  namespace: Flags.string({
    char: 'n',
    description: 'The installer’s namespace, which holds the install state.',
    default: 'astrago-airgap',
  }),
  helm: Flags.string({ description: 'The helm binary (default: helm on PATH, or $ASTRAGO_HELM).' }),
}
