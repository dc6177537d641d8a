/**
 * Optional stages: a stage.yaml may say `enabled: ${{ site.<path> }}` (or `enabled: false`), and the stage is then
 * installed only when that site value is true. A stage that is off is left out before anything else happens: its
 * site values are not checked, its passwords are not generated, it is not planned, applied or waited for, and an
 * install that turns it off after it was on removes it as an upgrade removes anything the bundle no longer ships.
 * The value is read after the stages' defaults are applied, so the stage's schema gives the default (docs/stages.md).
 */
import { AirgapError } from '../errors.js'
import type { Stage } from './load-stages.js'
import { applyDefaults, substituteSiteValues } from './site-values.js'

/** The stages the site values turn on, in bundle order; throws E_INPUT when an `enabled` value is not a boolean. */
export function enabledStages(stages: Stage[], siteValues: Record<string, unknown>): Stage[] {
  if (stages.every((s) => s.enabled === undefined || s.enabled === true)) return stages
  let values: unknown = structuredClone(siteValues)
  for (const stage of stages) if (stage.schema) values = applyDefaults(stage.schema, values) ?? {}
  const problems: string[] = []
  const kept = stages.filter((stage) => {
    if (stage.enabled === undefined || typeof stage.enabled === 'boolean') return stage.enabled !== false
    const where = `${stage.stageFile ?? `manifests/${stage.name}/stage.yaml`} enabled`
    const found: string[] = []
    const value: unknown = substituteSiteValues<unknown>(
      stage.enabled,
      values as Record<string, unknown>,
      where,
      found,
    )
    problems.push(...found)
    if (!found.length && typeof value !== 'boolean')
      problems.push(`${where}: ${stage.enabled} is ${JSON.stringify(value)}; expected true or false`)
    return value === true
  })
  if (problems.length)
    throw new AirgapError(
      'E_INPUT',
      `Cannot tell which optional stages to install:\n${problems.map((p) => `  ${p}`).join('\n')}`,
      {
        hints: [
          'Set the value to true or false in the file given with --values (astrago-airgap init-site writes it).',
        ],
        data: { problems },
      },
    )
  return kept
}
