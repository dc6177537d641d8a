import { Args, Flags } from '@oclif/core'
import { type BundleDiff, diffBundles } from '../bundle/diff-bundles.js'
import { AirgapCommand } from '../cli/base-command.js'
import { formatBytes } from '../events/format.js'

export default class Diff extends AirgapCommand<BundleDiff> {
  static override summary =
    'Show what changed between two bundles: images, charts, files, packages, stages, installer, sizes.'

  static override description =
    'Images added, removed, or with a changed digest, and tags that moved; charts and their versions; files; packages name by name with versions; stages file by file with a unified diff of the manifests; the installer; the sizes. Reads only bundle.json and the stage files of each bundle, so it is fast whatever their size; split volumes and extracted folders work too. --json gives the same as a structured result.'

  static override examples = [
    '<%= config.bin %> diff astrago-1.0.0.tar astrago-1.1.0.tar',
    '<%= config.bin %> diff /media/usb/astrago-1.0.0.tar.000 astrago-1.1.0.tar --json',
  ]

  static override args = {
    a: Args.string({
      description: 'The older bundle (file, first split volume, or extracted folder).',
      required: true,
    }),
    b: Args.string({ description: 'The newer bundle.', required: true }),
  }

  static override flags = {
    context: Flags.integer({
      char: 'U',
      description: 'Lines of context in the manifests’ unified diffs.',
      default: 3,
      min: 0,
      max: 1000,
    }),
    'no-manifests': Flags.boolean({
      description: 'List the changed stage files without their unified diffs.',
    }),
  }

  async run(): Promise<BundleDiff> {
    const { args, flags } = await this.parse(Diff)
    const result = await diffBundles({ a: args.a, b: args.b, context: flags.context })
    if (!this.jsonEnabled()) this.log(describeDiff(result, !flags['no-manifests']))
    return result
  }
}

function describeDiff(d: BundleDiff, manifests: boolean): string {
  const lines = [
    `${d.a.name} ${d.a.version} (${d.a.path}) → ${d.b.name} ${d.b.version} (${d.b.path})${d.identical ? ': same content' : ''}`,
  ]
  const signer = (s?: string) => s ?? 'unsigned'
  if (d.a.signedBy !== d.b.signedBy)
    lines.push(`  signed by: ${signer(d.a.signedBy)} → ${signer(d.b.signedBy)}`)
  const sign = (n: number) => (n > 0 ? `+${formatBytes(n)}` : n < 0 ? `-${formatBytes(-n)}` : '±0')
  lines.push(`  size: ${formatBytes(d.sizes.a)} → ${formatBytes(d.sizes.b)} (${sign(d.sizes.delta)})`)
  const inst = (i?: { version: string; platform: string }) => (i ? `${i.version} ${i.platform}` : 'none')
  if (d.installer.changed) {
    const rebuilt = d.installer.a && d.installer.b && inst(d.installer.a) === inst(d.installer.b)
    lines.push(
      `  installer: ${inst(d.installer.a)} → ${inst(d.installer.b)}${rebuilt ? ' (another build)' : ''}`,
    )
  }

  const section = (title: string, body: string[]) => {
    if (body.length) lines.push('', title, ...body)
  }
  const ref = (i: { name: string; tag?: string; digest: string }) =>
    `${i.name}${i.tag ? `:${i.tag}` : ''}  ${i.digest}`
  section('IMAGES', [
    ...d.images.added.map((i) => `  + ${ref(i)}`),
    ...d.images.removed.map((i) => `  - ${ref(i)}`),
    ...d.images.changed.map((i) => `  ~ ${i.name}${i.tag ? `:${i.tag}` : ''}  ${i.from} → ${i.to}`),
    ...d.images.tagMoves.map((m) => `  > ${m.name}  tag ${m.from.join(', ')} → ${m.to.join(', ')}`),
  ])
  section('CHARTS', [
    ...d.charts.added.map((c) => `  + ${c.name} ${c.version}`),
    ...d.charts.removed.map((c) => `  - ${c.name} ${c.version}`),
    ...d.charts.changed.map((c) => `  ~ ${c.name} ${c.from} → ${c.to}`),
  ])
  section('FILES', [
    ...d.files.added.map((f) => `  + ${f.path}  ${formatBytes(f.size)}`),
    ...d.files.removed.map((f) => `  - ${f.path}`),
    ...d.files.changed.map((f) => `  ~ ${f.path}  ${f.from} → ${f.to}`),
  ])
  section('PACKAGES', [
    ...d.packages.repositories.added.map((r) => `  + ${r.path} (${r.packages} packages)`),
    ...d.packages.repositories.removed.map((r) => `  - ${r.path} (${r.packages} packages)`),
    ...d.packages.byRepository.flatMap((r) => [
      `  ${r.path}`,
      ...r.added.map((p) => `    + ${p.name} ${p.version} ${p.architecture}`),
      ...r.removed.map((p) => `    - ${p.name} ${p.version} ${p.architecture}`),
      ...r.changed.map((p) => `    ~ ${p.name} ${p.from} → ${p.to} ${p.architecture}`),
    ]),
  ])
  const s = d.stages
  section('STAGES', [
    ...(s.order.a.join(',') !== s.order.b.join(',')
      ? [`  order: ${s.order.a.join(', ')} → ${s.order.b.join(', ')}`]
      : []),
    ...s.added.map((n) => `  + stage ${n}`),
    ...s.removed.map((n) => `  - stage ${n}`),
    ...s.files.added.map((p) => `  + ${p}`),
    ...s.files.removed.map((p) => `  - ${p}`),
    ...s.files.changed.flatMap((c) => [
      `  ~ ${c.path}`,
      ...(manifests && c.diff
        ? c.diff
            .trimEnd()
            .split('\n')
            .map((l) => `    ${l}`)
        : []),
    ]),
  ])
  return lines.join('\n')
}
