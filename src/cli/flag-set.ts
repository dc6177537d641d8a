import { Flags } from '@oclif/core'
import { AirgapError } from '../errors.js'

/**
 * --set CHART.KEY=VALUE (a value for rendering one chart; dots nest), parsed by oclif when it reads the command line,
 * and the per-chart values object the parsed flags build.
 */

/** One --set: the chart, the key path inside its values, and the value (true/false and integers typed). */
export interface ChartValueSetting {
  chart: string
  key: string[]
  value: string | number | boolean
}

const EXAMPLE = 'gpu-operator.driver.enabled=false'

/** CHART.KEY=VALUE → a ChartValueSetting; "true"/"false" become booleans and integers numbers. */
export function parseChartValue(text: string): ChartValueSetting {
  const eq = text.indexOf('=')
  const fail = (why: string): never => {
    throw new AirgapError('E_USAGE', `--set ${text}: expected CHART.KEY=VALUE, but ${why}.`, {
      hints: [`Write it as --set ${EXAMPLE} (CHART is the chart's name; dots in KEY nest).`],
    })
  }
  if (eq < 0) return fail('there is no "="')
  if (eq === text.length - 1) return fail('the value after "=" is empty')
  const [chart, ...key] = text.slice(0, eq).split('.')
  if (!chart) return fail('the chart name before the first "." is empty')
  if (key.length === 0) return fail('there is no KEY after the chart name')
  if (key.some((part) => part === '')) return fail('the key has an empty part between dots')
  const raw = text.slice(eq + 1)
  const value = raw === 'true' ? true : raw === 'false' ? false : /^-?\d+$/.test(raw) ? Number(raw) : raw
  return { chart, key, value }
}

/** The values of every chart named by the --set flags, in order (a later --set wins). */
export function chartValuesFromSettings(
  settings: readonly ChartValueSetting[] | undefined,
): Record<string, Record<string, unknown>> {
  const values: Record<string, Record<string, unknown>> = {}
  for (const { chart, key, value } of settings ?? []) {
    values[chart] ??= {}
    let current = values[chart]!
    for (const part of key.slice(0, -1)) {
      if (typeof current[part] !== 'object' || current[part] === null) current[part] = {}
      current = current[part] as Record<string, unknown>
    }
    current[key.at(-1)!] = value
  }
  return values
}

/** Repeatable --set CHART.KEY=VALUE. */
export const setFlag = Flags.custom<ChartValueSetting>({
  description: 'CHART.KEY=VALUE: a value for rendering a chart (dots nest). Repeatable.',
  multiple: true,
  helpValue: 'CHART.KEY=VALUE',
  parse: async (input) => parseChartValue(input),
})()
