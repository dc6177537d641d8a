import { formatDuration } from '../../events/format.js'
import type { InstallBundleResult } from '../../install/install-bundle.js'

/**
 * The text `install` prints for its result without --json: the mode and each stage, what was pruned, the plan of a dry
 * run, the site values generated this time, the push and audit, and where the nodes pull from.
 */
export function formatInstallResult(result: InstallBundleResult): string {
  const { install } = result
  const lines = [
    `${install.bundle.name} ${install.bundle.version}: ${install.mode}${install.nothingToDo ? ' (nothing to do: already installed and ready)' : ''} in ${formatDuration(install.durationMs)}`,
  ]
  for (const stage of install.stages)
    lines.push(
      `  ${stage.action.padEnd(8)} ${stage.name} (${stage.objects} objects${stage.releases.length ? `, releases ${stage.releases.join(', ')}` : ''})`,
    )
  if (install.pruned.objects.length || install.pruned.releases.length) {
    lines.push(
      `  pruned ${install.pruned.objects.length} objects and ${install.pruned.releases.length} releases the new bundle no longer ships`,
    )
  }
  if (install.plan) {
    for (const stage of install.plan.stages) {
      lines.push(
        `  stage ${stage.name}: ${stage.objects.length} objects, ${stage.charts.length} charts, ${stage.images.length} images`,
      )
      for (const o of stage.objects)
        lines.push(`    ${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`)
      for (const c of stage.charts)
        lines.push(`    chart ${c.chart} ${c.version} as ${c.namespace}/${c.release}`)
    }
  }
  const created = install.generated?.filter((g) => g.created) ?? []
  if (created.length) {
    lines.push(
      `  generated ${created.length} site values (kept in Secret ${install.namespace}/astrago-airgap-generated; shown only this once):`,
    )
    for (const g of created) lines.push(`    ${g.path}: ${g.value}`)
  }
  if (result.push)
    lines.push(
      `  pushed to ${result.push.registry}${result.push.prefix ? `/${result.push.prefix}` : ''}: ${result.push.images} images, ${result.push.charts} charts`,
    )
  if (result.audit)
    lines.push(
      `  air-gap audit: all ${result.audit.ok} images of the installed workloads are in the ${result.audit.against.registry ? 'served registry' : 'bundle'}`,
    )
  const pull = result.pullFrom
  if (pull)
    lines.push(
      pull.kind === 'registry'
        ? `  nodes pull from the registry ${pull.where} (the workloads were relocated to it)`
        : pull.kind === 'site-server'
          ? `  nodes pull from the site server ${pull.where}: keep it running (serve --install-service)`
          : pull.endsWithCommand
            ? `  nodes pull from ${pull.where}, served by this command only while it ran: WARNING, it has stopped; run \`astrago-airgap serve\` (or serve --install-service) with the same state folder, or use an in-cluster registry (--push-to)`
            : `  nodes pull from ${pull.where}, served by this command until it is stopped`,
    )
  return lines.join('\n')
}
