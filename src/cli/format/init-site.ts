import type { InitSiteResult } from '../../stages/init-site.js'

/**
 * The text `init-site` prints for its result without --json: the site values file itself with --output -, else
 * where it was written and what the site must fill in.
 */
export function formatInitSiteResult(result: InitSiteResult): string {
  if (result.path === '-') return result.text.replace(/\n$/, '')
  const lines = [
    `Wrote ${result.path}: site values of ${result.bundle.name} ${result.bundle.version} (stages ${result.stages.join(', ') || 'none'}).`,
  ]
  if (result.required.length) lines.push(`  fill in: ${result.required.join(', ')}`)
  if (result.generated.length)
    lines.push(`  generated on the site when left out: ${result.generated.join(', ')}`)
  return lines.join('\n')
}
