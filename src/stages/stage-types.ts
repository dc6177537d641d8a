/**
 * What loading a bundle's install stages yields (docs/stages.md): a Stage with its manifests, the ConfigMaps its
 * stage.yaml makes from files, its Helm charts, readiness rules, timeout and site-values schema; and the problems
 * found while loading, those of a stage.yaml with their file:line:col.
 */
import type { BundleMetadata } from '../bundle/metadata.js'
import type { ValuesSchema } from './site-values.js'

export const STAGE_API_VERSION = 'airgap.astrago.io/v1alpha1'
export const STAGE_FILE = 'stage.yaml'
export const DEFAULT_STAGE_TIMEOUT_MS = 10 * 60_000
/** A Kubernetes namespace or release name: lowercase letters, digits and -. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/** A manifest document as written in the bundle (site values not substituted yet). */
export interface StageDocument {
  /** "manifests/base/operator.yaml (document 2)", or "manifests/base/stage.yaml configMaps[0]" */
  source: string
  object: Record<string, unknown>
  /** Set on a ConfigMap made by a `configMaps:` generator of stage.yaml. */
  generated?: GeneratedConfigMap
}

/** How a generated ConfigMap's data is treated when the plan substitutes site values. */
export interface GeneratedConfigMap {
  /** True: `${{ site.… }}` in the files' text is substituted (as text). False: the data is left exactly as written. */
  substitute: boolean
  /** Data key → the bundle member it was read from (for problems). */
  members: Record<string, string>
}

/** The size limit of one ConfigMap (the API server refuses larger objects). */
export const MAX_CONFIGMAP_BYTES = 1 << 20

export interface StageChart {
  /** Chart name in the bundle (charts/<name>-<version>.tgz). */
  chart: string
  version: string
  /** The bundle member holding the chart archive. */
  member: string
  release: string
  namespace: string
  /** Values files (relative to the stage folder, read from the bundle) in the order given, then the inline values. */
  valuesFiles: { member: string; values: Record<string, unknown> }[]
  values: Record<string, unknown>
  /** Images the bundle recorded for this chart. */
  images: string[]
  /** "manifests/apps/stage.yaml charts[0]" */
  source: string
}

export interface ReadinessRule {
  apiVersion: string
  kind: string
  name: string
  namespace?: string
  jsonPath: string
  /** The value (as text) the path must find; without it any non-empty value will do. */
  equals?: string
  source: string
}

export interface Stage {
  name: string
  /** The stage.yaml member, when the stage has one. */
  stageFile?: string
  timeoutMs: number
  /**
   * An optional stage: false, or a site value reference (`${{ site.registry.enabled }}`) that must be true for the
   * stage to be installed (see optional-stages.ts). Absent: the stage is always installed.
   */
  enabled?: boolean | string
  /** Namespace for namespaced manifests that name none (default: "default"). */
  namespace?: string
  documents: StageDocument[]
  charts: StageChart[]
  readiness: ReadinessRule[]
  schema?: ValuesSchema
}

/** What loadStages needs from a bundle: a BundleReader is one. */
export interface StageSource {
  metadata: BundleMetadata
  read(path: string): Promise<Buffer>
}

/** Where in a stage.yaml a problem is: line and column are 1-based, path is like `charts[0].chart` ('' = document). */
export interface StageProblemPosition {
  file: string
  line: number
  column: number
  path: string
  message: string
}

/** One problem found while loading stages. */
export interface StageProblem {
  /** As listed in the error's data.problems: "manifests/s/stage.yaml charts[0].chart: …" */
  text: string
  /** Set for the problems of a stage.yaml. */
  at?: StageProblemPosition
}

/** Reports a problem at a field of a stage.yaml; `atKey` points at the field's name rather than its value. */
export type StageReport = (field: string, what: string, options?: { atKey?: boolean }) => void
