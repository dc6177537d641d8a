import { AirgapError } from '../errors.js'
import { sha256Digest } from '../oci/digest.js'
import { applyOrder } from './apply-order.js'
import { imagesOf, rewriteImages } from './images.js'
import type { ReadinessRule, Stage, StageChart, StageDocument } from './load-stages.js'
import {
  formatRef,
  groupOf,
  isPlainObject,
  type KubeObject,
  refKey,
  refOf,
  WELL_KNOWN_CLUSTER_SCOPED,
} from './objects.js'
import { resolveSiteValues, substituteSiteValues } from './site-values.js'

/**
 * The install plan: the bundle's stages with the site values substituted, images relocated (when asked), objects
 * in apply order and every chart's values resolved. Pure (no cluster): `--dry-run` shows it, the install applies it.
 */
export interface PlannedObject {
  object: KubeObject
  /** Where it comes from: "manifests/base/operator.yaml (document 2)". */
  source: string
}

export interface PlannedChart extends Omit<StageChart, 'valuesFiles' | 'values'> {
  /** Values in helm's order of precedence: each values file, then the inline values (last wins). */
  values: { source: string; values: Record<string, unknown> }[]
}

export interface PlannedStage {
  name: string
  timeoutMs: number
  objects: PlannedObject[]
  charts: PlannedChart[]
  readiness: ReadinessRule[]
  /** Images the stage's pod specs name (after relocation) and the images the bundle recorded for its charts. */
  images: string[]
}

export interface InstallPlan {
  stages: PlannedStage[]
  /** The site values after defaults. */
  values: Record<string, unknown>
  /** sha256 of the rendered stages (objects, chart values, readiness): a change means they must be applied again. */
  valuesDigest: string
}

export interface PlanOptions {
  /** Relocate pod-spec images to this registry (`<registry>/docker.io/library/nginx:1.27`). */
  imageRegistry?: string
}

export function planStages(
  stages: Stage[],
  siteValues: Record<string, unknown>,
  options: PlanOptions = {},
): InstallPlan {
  const values = resolveSiteValues(
    siteValues,
    stages.filter((s) => s.schema).map((s) => ({ stage: s.name, schema: s.schema! })),
  )
  const problems: string[] = []
  const clusterScoped = clusterScopedKinds(stages)
  const seen = new Map<string, string>()
  const planned: PlannedStage[] = []

  for (const stage of stages) {
    const objects: PlannedObject[] = []
    for (const doc of stage.documents) {
      let object = (
        doc.generated
          ? substituteGenerated(doc, values, problems)
          : substituteSiteValues(doc.object, values, doc.source, problems)
      ) as KubeObject
      if (!object.metadata.namespace && !clusterScoped.has(`${groupOf(object.apiVersion)}/${object.kind}`))
        object.metadata.namespace = stage.namespace ?? 'default'
      if (options.imageRegistry) object = rewriteImages(object, options.imageRegistry).object
      const key = refKey(refOf(object))
      const earlier = seen.get(key)
      if (earlier) {
        problems.push(
          `${doc.source}: ${formatRef(refOf(object))} is also in ${earlier}; an object can be applied by one stage file only`,
        )
        continue
      }
      seen.set(key, doc.source)
      objects.push({ object, source: doc.source })
    }

    const charts: PlannedChart[] = stage.charts.map((chart) => {
      const { valuesFiles, values: inline, ...rest } = chart
      return {
        ...rest,
        values: [
          ...valuesFiles.map((f) => ({
            source: f.member,
            values: substituteSiteValues(f.values, values, f.member, problems),
          })),
          {
            source: `${chart.source}.values`,
            values: substituteSiteValues(inline, values, `${chart.source}.values`, problems),
          },
        ],
      }
    })

    const readiness = stage.readiness.map((rule) => {
      const { source, jsonPath, ...rest } = rule
      const resolved = {
        ...substituteSiteValues(rest, values, source, problems),
        jsonPath,
        source,
      } as ReadinessRule
      if (!resolved.namespace && !clusterScoped.has(`${groupOf(resolved.apiVersion)}/${resolved.kind}`))
        resolved.namespace = stage.namespace ?? 'default'
      return resolved
    })

    const images = new Set<string>()
    for (const o of objects) for (const image of imagesOf(o.object)) images.add(image)
    for (const chart of charts) for (const image of chart.images) images.add(image)

    planned.push({
      name: stage.name,
      timeoutMs: stage.timeoutMs,
      objects: applyOrder(objects, (o) => o.object),
      charts,
      readiness,
      images: [...images].sort(),
    })
  }

  if (problems.length) {
    throw new AirgapError(
      'E_INPUT',
      `The stages cannot be prepared with these site values:\n${problems.map((p) => `  ${p}`).join('\n')}`,
      {
        hints: ['Add the missing values to the file given with --values; docs/stages.md lists the syntax.'],
        data: { problems },
      },
    )
  }
  return {
    stages: planned,
    values,
    // What the values make of the stages, not the values themselves: a value no stage uses (or an installer
    // built-in such as the site server's address, when nothing refers to it) changes nothing.
    valuesDigest: sha256(canonicalJson(planned)),
  }
}

/**
 * A ConfigMap of a `configMaps:` generator: its metadata is substituted like any manifest; its data is substituted
 * as text when the generator says `substitute: true`, and otherwise kept exactly as the files hold it (a dashboard
 * or realm file may contain `${{` of its own). binaryData is never touched.
 */
function substituteGenerated(
  doc: StageDocument,
  values: Record<string, unknown>,
  problems: string[],
): Record<string, unknown> {
  const { data, binaryData, ...rest } = doc.object
  const out = substituteSiteValues(rest, values, doc.source, problems)
  if (isPlainObject(data)) {
    if (!doc.generated?.substitute) out.data = data
    else {
      const substituted: Record<string, string> = {}
      for (const [key, text] of Object.entries(data)) {
        const where = doc.generated.members[key] ?? `${doc.source} data.${key}`
        const value = substituteSiteValues(text, values, where, problems)
        if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
          substituted[key] = String(value)
        else {
          problems.push(
            `${where}: the file is one site value reference to ${value === null ? 'null' : Array.isArray(value) ? 'a list' : 'a mapping'}; a ConfigMap holds text`,
          )
          substituted[key] = String(text)
        }
      }
      out.data = substituted
    }
  }
  if (binaryData !== undefined) out.binaryData = binaryData
  return out
}

/** group/kind of every cluster-scoped kind known without asking a cluster: built-ins and the bundle's own CRDs. */
function clusterScopedKinds(stages: Stage[]): Set<string> {
  const kinds = new Set<string>()
  for (const kind of WELL_KNOWN_CLUSTER_SCOPED) kinds.add(`${builtinGroup(kind)}/${kind}`)
  for (const stage of stages) {
    for (const doc of stage.documents) {
      const o = doc.object
      if (o.kind !== 'CustomResourceDefinition' || !isPlainObject(o.spec)) continue
      const names = isPlainObject(o.spec.names) ? o.spec.names : {}
      if (o.spec.scope === 'Cluster' && typeof names.kind === 'string')
        kinds.add(`${String(o.spec.group)}/${names.kind}`)
    }
  }
  return kinds
}

const BUILTIN_GROUPS: Record<string, string> = {
  CustomResourceDefinition: 'apiextensions.k8s.io',
  APIService: 'apiregistration.k8s.io',
  ClusterRole: 'rbac.authorization.k8s.io',
  ClusterRoleBinding: 'rbac.authorization.k8s.io',
  StorageClass: 'storage.k8s.io',
  CSIDriver: 'storage.k8s.io',
  CSINode: 'storage.k8s.io',
  VolumeAttachment: 'storage.k8s.io',
  PriorityClass: 'scheduling.k8s.io',
  RuntimeClass: 'node.k8s.io',
  IngressClass: 'networking.k8s.io',
  MutatingWebhookConfiguration: 'admissionregistration.k8s.io',
  ValidatingWebhookConfiguration: 'admissionregistration.k8s.io',
  ValidatingAdmissionPolicy: 'admissionregistration.k8s.io',
  ValidatingAdmissionPolicyBinding: 'admissionregistration.k8s.io',
  CertificateSigningRequest: 'certificates.k8s.io',
  FlowSchema: 'flowcontrol.apiserver.k8s.io',
  PriorityLevelConfiguration: 'flowcontrol.apiserver.k8s.io',
}

function builtinGroup(kind: string): string {
  return BUILTIN_GROUPS[kind] ?? ''
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (isPlainObject(value))
    return `{${Object.keys(value)
      .sort()
      .filter((k) => value[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`
  return JSON.stringify(value)
}

function sha256(text: string): string {
  return sha256Digest(text)
}
