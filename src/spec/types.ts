/**
 * The bundle definition (bundles/*.yaml) as the rest of the code sees it, after loading and validation
 * (src/spec/load.ts). The YAML schema is documented in docs/bundle-definition.md.
 */
export const BUNDLE_API_VERSION = 'airgap.astrago.io/v1alpha1'

export interface BundleSpec {
  apiVersion: typeof BUNDLE_API_VERSION
  kind: 'Bundle'
  metadata: {
    name: string
    /** The release version of this bundle (semver-like), part of the default file name. */
    version: string
    description?: string
  }
  /** Platforms kept from multi-platform images, as os/arch[/variant]. Default: ['linux/amd64']. */
  platforms: string[]
  images: ImageSpec[]
  charts: ChartSpec[]
  files: FileSpec[]
  /** OS and GPU-driver package repositories, each mirrored (its dependency closure) into repo/<kind>/<name>. */
  packages: PackageRepositorySpec[]
  stages: StageSpec[]
  /** Where this definition was loaded from (absolute path); relative paths in it resolve against its folder. */
  source: string
}

export interface ImageSpec {
  /** As written, e.g. "nginx:1.27" or "nvcr.io/nvidia/cuda@sha256:…". */
  ref: string
  /** Overrides the bundle's platforms for this image. */
  platforms?: string[]
  /** Why the image is in the bundle when nothing renders it (who starts it), for people reading the definition. */
  from?: string
}

/** What every chart entry has, whatever its source. */
export interface ChartSpecCommon {
  /** The chart's name (for a chart from git or a folder, the name in its Chart.yaml). */
  name: string
  /** Values used when rendering the chart to discover its images. */
  values?: Record<string, unknown>
  /** Render the chart with `helm template` and add every image found (default true). */
  discoverImages: boolean
  /** Images the rendered chart does not show (created at run time by an operator), added explicitly. */
  extraImages: string[]
}

/** A chart from a chart repository, at an exact version. */
export interface RepoChartSpec extends ChartSpecCommon {
  version: string
  /** A Helm repository URL (https://…) or an OCI repository (oci://host/path, the chart name appended). */
  repo: string
}

/** A chart from a git repository at a ref, packaged by the bundle (its dependencies vendored). */
export interface GitChartSpec extends ChartSpecCommon {
  /** When given, Chart.yaml must have this version. */
  version?: string
  git: GitChartSourceSpec
}

/** A chart from a local folder, packaged by the bundle (its dependencies vendored). */
export interface LocalChartSpec extends ChartSpecCommon {
  /** When given, Chart.yaml must have this version. */
  version?: string
  /** The chart's folder, relative to the definition's folder. */
  path: string
}

export interface GitChartSourceSpec {
  /** The repository, as `git clone` takes it (https://…, ssh://…, git@host:org/repo). */
  url: string
  /** A full 40-hex commit sha (reproducible), or a branch or tag (resolved to its commit, with a warning). */
  ref: string
  /** The chart's folder inside the repository, `/`-separated ("" for the repository's root). */
  path: string
}

export type ChartSpec = RepoChartSpec | GitChartSpec | LocalChartSpec

export const isRepoChart = (chart: ChartSpec): chart is RepoChartSpec => 'repo' in chart
export const isGitChart = (chart: ChartSpec): chart is GitChartSpec => 'git' in chart
export const isLocalChart = (chart: ChartSpec): chart is LocalChartSpec => 'path' in chart

export interface FileSpec {
  url: string
  sha256: string
  /** Destination inside the bundle's files/ folder, e.g. "bin/linux-amd64/helm.tar.gz". */
  path: string
  /** Size in bytes, when known: lets the bundle be planned without asking the server. */
  size?: number
}

export interface StageSpec {
  name: string
  /** A folder or file under the definition's folder (usually ../manifests/<stage>), copied into the bundle. */
  path: string
}

/** One package repository of the bundle: an apt or an rpm source, and what to take from it. */
export interface PackageRepositorySpec {
  /** The repository's name in the bundle (repo/apt/<name> or repo/rpm/<name>), unique per kind. */
  name: string
  apt?: AptSourceSpec
  rpm?: RpmSourceSpec
  /** What to install: apt `name`, `name:arch`, `name=version`, `name (>= version)`; rpm `name`, `name >= evr`. */
  packages: string[]
  /** Kernel versions of the GPU nodes (`uname -r`): what the driver builds with is added (kernel-packages.ts). */
  kernels: string[]
  /** What the nodes already have, left out of the repository (default for apt: Priority required). */
  baseline?: { priorities?: string[]; packages?: string[] }
  /**
   * `chosen`: node-setup.sh sets this repository up (and installs its packages) only on nodes where it is named with
   * --repository, such as the NVIDIA driver on GPU nodes with the driver on the host. Default: every node of its
   * release.
   */
  nodes?: 'chosen'
}

export interface AptSourceSpec {
  mirror: string
  /** The suites read together (jammy, jammy-updates, jammy-security); the repository is written as the first. */
  suites: string[]
  components: string[]
  /** The first is the nodes' native architecture. */
  architectures: string[]
  /** OpenPGP keyrings (absolute, or relative to the definition) the Release must be signed with. */
  keyrings: string[]
  trusted: boolean
}

export interface RpmSourceSpec {
  baseurl: string
  /** e.g. x86_64 and noarch. */
  architectures: string[]
  keyrings: string[]
  trusted: boolean
  /** What the keyrings sign: repomd.xml (default) or every package (checked after download). */
  signed: 'repomd' | 'packages'
}
