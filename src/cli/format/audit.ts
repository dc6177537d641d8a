import { type AuditResult, describeWorkloads } from '../../audit/audit-images.js'
import { formatDuration } from '../../events/format.js'

/** The text `audit` prints for its result without --json: the summary line, then each image and who uses it. */
export function formatAuditResult(result: AuditResult): string {
  const against = [
    result.against.registry ? `registry ${result.against.registry}` : undefined,
    result.against.bundle
      ? `bundle ${result.against.bundle.name} ${result.against.bundle.version}`
      : undefined,
  ]
    .filter(Boolean)
    .join(' and ')
  const lines = [
    `${result.images.length} images in ${result.workloads} workload objects (${result.namespaces === 'all' ? 'all namespaces' : result.namespaces.join(', ')}) checked against ${against} in ${formatDuration(result.durationMs)}: ${result.ok} OK, ${result.missing} missing${result.invalid ? `, ${result.invalid} invalid` : ''}`,
  ]
  for (const image of result.images) {
    const status = image.status === 'ok' ? 'OK     ' : image.status === 'missing' ? 'MISSING' : 'INVALID'
    const detail =
      image.status === 'missing'
        ? ` (would be pulled from ${image.upstream})`
        : image.status === 'invalid'
          ? ` (${image.reason})`
          : ''
    lines.push(`  ${status} ${image.image}${detail}`)
    if (image.status !== 'ok') lines.push(`          used by ${describeWorkloads(image.workloads)}`)
  }
  return lines.join('\n')
}
