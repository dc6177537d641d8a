import type { ServeServiceStatus } from '../../serve/systemd-service.js'
import type { InstallState } from '../../stages/state.js'

/**
 * The text `status` prints without --json: the installed bundle and each stage, then the site server service when it
 * is installed.
 */
export function formatInstallStatus(state: InstallState, service: ServeServiceStatus): string {
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
  if (service.installed) lines.push(formatServiceStatus(service))
  return lines.join('\n')
}

/** The line about the site server service (serve --install-service): installed, enabled, running, answering. */
export function formatServiceStatus(s: ServeServiceStatus): string {
  if (!s.installed) return `site server service: not installed (${s.unitFile})`
  const running = s.active ? `, ${s.active}` : ''
  const health =
    s.healthy === undefined
      ? ''
      : s.healthy
        ? `, healthy (${s.healthUrl})`
        : `, NOT answering: ${s.detail ?? s.healthUrl}`
  return `site server service: ${s.enabled ? 'enabled' : 'installed, not enabled'}${running}${health}`
}
