import { describeChartOrigin, type InspectResult } from '../../bundle/inspect.js'
import { formatBytes } from '../../events/format.js'

/**
 * The text `inspect` prints for its result without --json: a summary (with the signer), then the images, charts (with
 * where each came from), files, packages and stages; with `section`, only that section.
 */
export function formatInspectResult(result: InspectResult, section?: string): string {
  const m = result.metadata
  const repositories = m.packages ?? []
  const lines: string[] = []
  const show = (name: string) => !section || section === name
  if (!section) {
    lines.push(`${m.name} ${m.version}${m.description ? ` — ${m.description}` : ''}`)
    lines.push(`  file: ${result.path} (${formatBytes(result.size)}), written by ${m.createdBy}`)
    if (m.base) {
      lines.push(
        `  delta on: ${m.base.name} ${m.base.version} (bundle.json ${m.base.bundleJson}): read it with --base <that bundle>; the inventory below is the full bundle's`,
      )
    }
    lines.push(`  platforms: ${m.platforms.join(', ')}`)
    const sig = result.signature
    lines.push(
      sig
        ? `  signed by: ${sig.signer ?? '(unreadable signature)'}${sig.created ? ` at ${sig.created}` : ''}${sig.matchesBundleJson ? '' : ' (not the signer bundle.json names!)'}; \`verify --key\` checks it`
        : '  signed by: nobody (unsigned bundle)',
    )
    if (m.installer) {
      lines.push(
        `  installer: ${m.installer.path} (${m.installer.platform}, ${formatBytes(m.installer.size)}, astrago-airgap ${m.installer.version}): tar -xf ${result.path} ${m.installer.path} && ./${m.installer.path} install ${result.path}`,
      )
    }
    lines.push(
      `  ${m.images.length} images, ${m.charts.length} charts, ${m.files.length} files, ` +
        `${repositories.reduce((a, r) => a + r.packages.length, 0)} packages, ${m.stages.length} stages; ` +
        `blobs ${formatBytes(m.totals.blobBytes)} (shared layers saved ${formatBytes(Math.max(0, m.totals.imageBytesWithoutDedup - m.totals.blobBytes))})`,
    )
  }
  if (show('images')) {
    lines.push('', 'IMAGES')
    for (const image of m.images) {
      const name = image.tag ? `${image.name}:${image.tag}` : image.name
      lines.push(`  ${name}  ${image.digest}  ${image.platforms.join(',')}  ${formatBytes(image.size)}`)
    }
  }
  if (show('charts')) {
    lines.push('', 'CHARTS')
    for (const chart of m.charts)
      lines.push(
        `  ${chart.name} ${chart.version}  ${describeChartOrigin(chart)}  ${chart.images.length} images`,
      )
  }
  if (show('files')) {
    lines.push('', 'FILES')
    for (const file of m.files) lines.push(`  ${file.path}  ${formatBytes(file.size)}  sha256:${file.sha256}`)
  }
  if (show('packages')) {
    lines.push('', 'PACKAGES')
    if (repositories.length === 0) lines.push('  (none)')
    for (const repository of repositories) {
      const bytes = repository.packages.reduce((a, p) => a + p.size, 0)
      lines.push(
        `  ${repository.path}  ${repository.packages.length} packages, ${formatBytes(bytes)}  from ${repository.details.upstream ?? '?'}`,
      )
      for (const pkg of repository.packages) {
        const why = pkg.reason && pkg.reason.length > 1 ? `  (${pkg.reason.join(' → ')})` : ''
        lines.push(`    ${pkg.name} ${pkg.version} ${pkg.architecture}  ${formatBytes(pkg.size)}${why}`)
      }
    }
  }
  if (show('stages')) {
    lines.push('', 'STAGES')
    for (const [i, stage] of m.stages.entries())
      lines.push(`  ${i + 1}. ${stage.name} (${stage.files.length} files)`)
  }
  return lines.join('\n')
}
