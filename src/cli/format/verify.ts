import type { VerifyResult } from '../../bundle/verify.js'
import { formatBytes, formatDuration } from '../../events/format.js'

/** The line `verify` prints for its result without --json: what was checked, and who signed bundle.json. */
export function formatVerifyResult(result: VerifyResult): string {
  const { signature } = result
  const signed = signature.signed
    ? `signed by ${signature.fingerprint}${signature.trusted ? ' (a trusted key)' : ' (not checked against a trusted key: give --key)'}`
    : 'UNSIGNED'
  const base = result.base
    ? ` (${result.base.members} of them in the base ${result.base.name} ${result.base.version})`
    : ''
  return `OK: ${result.name} ${result.version}, ${signed}, ${result.members} members${base}, ${formatBytes(result.bytes)} ${result.mode === 'full' ? 'rehashed' : 'present'} in ${formatDuration(result.durationMs)}`
}
