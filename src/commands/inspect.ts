import { Args, Flags } from '@oclif/core'
import { describeChartOrigin, type InspectResult, inspectBundle } from '../bundle/inspect.js'
import { AirgapCommand } from '../cli/base-command.js'
import { formatBytes } from '../events/format.js'

export default class Inspect extends AirgapCommand<InspectResult> {
  static override summary = "Show a bundle's version, images, charts, files, packages and stages."

  static override description =
    "Reads only bundle.json, the first member, and its signature, so it answers at once whatever the bundle size. It shows the signer's fingerprint as the signature names it (`verify --key` checks it). Use --json for the whole lock."

  static override examples = [
    '<%= config.bin %> inspect astrago-1.0.0.tar',
    '<%= config.bin %> inspect astrago-1.0.0.tar.000 --json',
  ]

  static override args = {
    bundle: Args.string({
      description: 'The bundle file, its first split volume, or the folder it was extracted into.',
      required: true,
    }),
  }

  static override flags = {
    section: Flags.string({
      description: 'Show only one section.',
      options: ['images', 'charts', 'files', 'packages', 'stages'],
    }),
  }

  async run(): Promise<InspectResult> {
    const { args, flags } = await this.parse(Inspect)
    const result = await inspectBundle(args.bundle)
    if (this.jsonEnabled()) return result
    const m = result.metadata
    const repositories = m.packages ?? []
    const lines: string[] = []
    const show = (section: string) => !flags.section || flags.section === section
    if (!flags.section) {
      lines.push(`${m.name} ${m.version}${m.description ? ` — ${m.description}` : ''}`)
      lines.push(`  file: ${result.path} (${formatBytes(result.size)}), written by ${m.createdBy}`)
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
      for (const file of m.files)
        lines.push(`  ${file.path}  ${formatBytes(file.size)}  sha256:${file.sha256}`)
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
    this.log(lines.join('\n'))
    return result
  }
}
