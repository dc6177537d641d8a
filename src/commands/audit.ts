import { Flags } from '@oclif/core'
import { type AuditResult, auditFailure, auditImages } from '../audit/audit-images.js'
import { AirgapCommand } from '../cli/base-command.js'
import { usernameFlag } from '../cli/flags.js'
import { formatAuditResult } from '../cli/format/audit.js'
import { readCredentials } from '../cli/input.js'
import { kubeFlags } from '../cli/kubeconfig.js'

export default class Audit extends AirgapCommand<AuditResult> {
  static override summary =
    'The air-gap audit: check that every image the cluster’s workloads use is in the site registry.'

  static override description =
    'Lists the images of every Pod (containers, init and ephemeral containers) and of the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs, in every namespace or the ones given, and checks each against the running site registry (--registry, a manifest HEAD) or a bundle’s lock (--bundle). Each image is OK, or MISSING: a node would pull it from the internet, and the report names its upstream registry and every workload that uses it. Exits with E_CLUSTER (8) when an image is missing; with --json the error carries the full report.'

  static override examples = [
    '<%= config.bin %> audit --registry https://10.0.0.5:8443 --ca-file astrago-airgap-site/ca/ca.crt',
    '<%= config.bin %> audit --bundle astrago-1.0.0.tar -n gpu-operator -n astrago',
  ]

  static override flags = {
    kubeconfig: kubeFlags.kubeconfig,
    context: kubeFlags.context,
    namespace: Flags.string({
      char: 'n',
      description: 'Only look in this namespace. Repeatable. Default: every namespace.',
      multiple: true,
    }),
    registry: Flags.string({
      description:
        'The running site registry, https://host:port (optionally /prefix, e.g. a Harbor project).',
    }),
    'ca-file': Flags.string({
      description: 'Trust the CA certificates in this PEM file (the site CA). Repeatable.',
      multiple: true,
    }),
    bundle: Flags.string({ description: 'Check against this bundle’s lock instead of a running registry.' }),
    'site-registry': Flags.string({
      description:
        'A registry prefix (host:port[/prefix]) images were relocated to; what follows it is the upstream name. Repeatable.',
      multiple: true,
    }),
    username: usernameFlag({
      description:
        'REGISTRY=USER for --registry when it needs credentials to pull; password from --password-stdin.',
    }),
    'password-stdin': Flags.boolean({ description: 'Read the password for --username from stdin.' }),
  }

  async run(): Promise<AuditResult> {
    const { flags } = await this.parse(Audit)
    const credentials = await readCredentials(flags.username, flags['password-stdin'])
    const result = await auditImages({
      kubeconfig: flags.kubeconfig,
      context: flags.context,
      namespaces: flags.namespace,
      registry: flags.registry ? { url: flags.registry, caFiles: flags['ca-file'], credentials } : undefined,
      bundle: flags.bundle,
      siteRegistries: flags['site-registry'],
      toolVersion: this.config.version,
      sink: await this.sink(flags),
      signal: this.signal,
    })
    if (!this.jsonEnabled()) this.log(formatAuditResult(result))
    const failure = auditFailure(result)
    if (failure) throw failure
    return result
  }
}
