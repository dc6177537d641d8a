/**
 * Site values as reports show them: every value a stage's schema marks secret (`generate: password`, the values
 * init-site leaves out as passwords) is replaced by a marker, whether the site gave it or the installer generated
 * it. `install --dry-run` (its --json output included) prints the plan's values through this, never the secrets.
 */
import { isPlainObject } from './objects.js'

export const REDACTED = '(secret: not shown)'

/** A deep copy of `values` with the value at each path (when present) replaced by REDACTED. */
export function redactSecretValues(
  values: Record<string, unknown>,
  secretPaths: string[][],
): Record<string, unknown> {
  const copy = structuredClone(values)
  for (const path of secretPaths) {
    let current: unknown = copy
    for (const key of path.slice(0, -1)) current = isPlainObject(current) ? current[key] : undefined
    const last = path.at(-1)
    if (last !== undefined && isPlainObject(current) && current[last] !== undefined) current[last] = REDACTED
  }
  return copy
}
