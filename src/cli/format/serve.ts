import type { ServingBundle } from '../../serve/serve-bundle.js'
import type { ServeServiceResult } from '../../serve/systemd-service.js'

/** The text `serve` prints without --json: where the bundle is served and how nodes and helm reach it. */
export function formatServing(result: Omit<ServingBundle, 'stop'>): string {
  return [
    `Serving ${result.name} ${result.version} at ${result.url} (listening on ${result.listenUrl})`,
    `  registry:   ${result.registryHost}  (images under their full names, e.g. ${result.registryHost}/docker.io/library/…)`,
    `  charts:     helm repo add astrago ${result.url}/charts${result.caFile ? ` --ca-file ${result.caFile}` : ''}`,
    ...(result.caFile
      ? [
          `  site CA:    ${result.caFile} (SHA-256 ${result.caFingerprint})`,
          `  each node:  curl -fsSL --cacert ca.crt ${result.nodeSetupUrl} | sudo sh   (--dry-run to preview)`,
        ]
      : []),
    `  upstreams:  ${result.upstreams.join(', ')}`,
    ...result.users.map(
      (u) => `  push user:  ${u.name}${u.created ? ' (created)' : ''}, password in ${u.passwordFile}`,
    ),
    'Press Ctrl-C to stop.',
  ].join('\n')
}

/** The text `serve --install-service` prints without --json. */
export function formatServiceInstalled(service: ServeServiceResult): string {
  return [
    `Installed the service ${service.unit} (${service.unitFile})${service.systemctl ? ', enabled and started' : ', enabled'}.`,
    `  runs:    ${service.command.join(' ')}`,
    `  health:  ${service.healthUrl}  (astrago-airgap status --service)`,
    `  remove:  astrago-airgap serve --uninstall-service`,
  ].join('\n')
}

/** The line `serve --uninstall-service` prints without --json. */
export function formatServiceRemoved(removed: { unitFile: string; removed: boolean }): string {
  return removed.removed
    ? `Removed the service ${removed.unitFile}.`
    : `No service to remove (${removed.unitFile}).`
}
