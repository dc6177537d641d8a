import type { UninstallResult } from '../../stages/uninstall-stages.js'

/** The text `uninstall` prints for its result without --json: one line, what was removed and what was kept. */
export function formatUninstallResult(result: UninstallResult): string {
  return result.nothingToDo
    ? `Nothing to uninstall in namespace ${result.namespace}.`
    : `Removed ${result.bundle?.name} ${result.bundle?.version}: ${result.removed.objects.length} objects, ${result.removed.releases.length} releases.${result.kept?.length ? ` Kept the generated passwords (${result.kept.map((r) => `${r.namespace}/${r.name}`).join(', ')}); --purge removes them.` : ''}`
}
