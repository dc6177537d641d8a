import { type ObjectRef, refOf } from './objects.js'
import type { InstallPlan } from './plan-stages.js'
import { ruleRef } from './stage-refs.js'

/**
 * The plan of an install as a dry run reports it (and `install --dry-run --json` prints it): per stage its objects,
 * charts, readiness rules and images, and the site values after defaults. Plain data, nothing of the bundle's bytes.
 */
export interface PlanSummary {
  stages: {
    name: string
    timeoutMs: number
    objects: (ObjectRef & { source: string })[]
    charts: { release: string; namespace: string; chart: string; version: string; valuesFrom: string[] }[]
    readiness: { object: ObjectRef; jsonPath: string; equals?: string }[]
    images: string[]
  }[]
  /** The site values after defaults. */
  values: Record<string, unknown>
}

export function summarisePlan(plan: InstallPlan): PlanSummary {
  return {
    values: plan.values,
    stages: plan.stages.map((s) => ({
      name: s.name,
      timeoutMs: s.timeoutMs,
      objects: s.objects.map((o) => ({ ...refOf(o.object), source: o.source })),
      charts: s.charts.map((c) => ({
        release: c.release,
        namespace: c.namespace,
        chart: c.chart,
        version: c.version,
        valuesFrom: c.values.map((v) => v.source),
      })),
      readiness: s.readiness.map((r) => ({
        object: ruleRef(r),
        jsonPath: r.jsonPath,
        ...(r.equals !== undefined ? { equals: r.equals } : {}),
      })),
      images: s.images,
    })),
  }
}
