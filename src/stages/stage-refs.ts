import type { ObjectRef, ReleaseRef } from './objects.js'
import type { PlannedChart } from './plan-stages.js'

/** The references a planned stage records and waits for: its chart releases and the objects of its readiness rules. */

/** The release a chart of a stage becomes. */
export function releaseRefOf(chart: PlannedChart): ReleaseRef {
  return { name: chart.release, namespace: chart.namespace, chart: chart.chart, version: chart.version }
}

/** The object a readiness rule looks at. */
export function ruleRef(rule: {
  apiVersion: string
  kind: string
  name: string
  namespace?: string
}): ObjectRef {
  return {
    apiVersion: rule.apiVersion,
    kind: rule.kind,
    name: rule.name,
    ...(rule.namespace ? { namespace: rule.namespace } : {}),
  }
}
