/**
 * The rule tables of a bundle definition: for each mapping of the format (the top level, metadata, an image, a chart
 * and its git source, a file, a stage, a package repository and its apt or rpm source), its fields, which are
 * required, and what a valid value looks like (for messages). The bundle checker walks the document with these; docs/bundle-definition.md
 * describes the same format for people.
 */
import { IMAGE_REFERENCE_EXPECTED } from './image-reference-syntax.js'
import { BUNDLE_API_VERSION } from './types.js'
import {
  CHART_FOLDER_EXPECTED,
  CHART_NAME_EXPECTED,
  CHART_REPO_EXPECTED,
  CHART_VERSION_EXPECTED,
  FILE_PATH_EXPECTED,
  FILE_URL_EXPECTED,
  GIT_PATH_EXPECTED,
  GIT_REF_EXPECTED,
  GIT_URL_EXPECTED,
  LABEL_EXPECTED,
  PACKAGE_NAME_EXPECTED,
  PLATFORM_EXPECTED,
  q,
  SHA256_EXPECTED,
  STAGE_PATH_EXPECTED,
  VERSION_EXPECTED,
} from './value-checks.js'
import type { Rule } from './yaml-checker.js'

export const DEFAULT_PLATFORMS: readonly string[] = ['linux/amd64']

export const TOP_RULES: Record<string, Rule> = {
  apiVersion: { required: true, expected: q(BUNDLE_API_VERSION) },
  kind: { required: true, expected: '"Bundle"' },
  metadata: { required: true, expected: 'a mapping with name, version and optional description' },
  platforms: { expected: `a list of ${PLATFORM_EXPECTED}` },
  images: { expected: 'a list of image references' },
  charts: { expected: 'a list of charts' },
  files: { expected: 'a list of files' },
  packages: { expected: 'a list of package repositories' },
  stages: { expected: 'a list of stages' },
}

export const METADATA_RULES: Record<string, Rule> = {
  name: { required: true, expected: `a name of ${LABEL_EXPECTED}` },
  version: { required: true, expected: VERSION_EXPECTED },
  description: { expected: 'a text' },
}

export const IMAGE_RULES: Record<string, Rule> = {
  ref: { required: true, expected: IMAGE_REFERENCE_EXPECTED },
  platforms: { expected: `a list of ${PLATFORM_EXPECTED}` },
  from: { expected: 'a text saying why the image is needed' },
}

export const CHART_RULES: Record<string, Rule> = {
  name: { required: true, expected: CHART_NAME_EXPECTED },
  version: {
    expected: `${CHART_VERSION_EXPECTED} (required with repo; with git or path, checked against Chart.yaml)`,
  },
  repo: { expected: CHART_REPO_EXPECTED },
  git: { expected: 'a git source {url, ref, path}' },
  path: { expected: CHART_FOLDER_EXPECTED },
  values: { expected: 'a mapping of chart values' },
  discoverImages: { expected: 'true or false' },
  extraImages: { expected: `a list of image references, each ${IMAGE_REFERENCE_EXPECTED}` },
}

/** The sources a chart entry may name; exactly one of them. */
export const CHART_SOURCES = ['repo', 'git', 'path'] as const

export const GIT_SOURCE_RULES: Record<string, Rule> = {
  url: { required: true, expected: GIT_URL_EXPECTED },
  ref: { required: true, expected: GIT_REF_EXPECTED },
  path: { expected: GIT_PATH_EXPECTED },
}

export const FILE_RULES: Record<string, Rule> = {
  url: { required: true, expected: FILE_URL_EXPECTED },
  sha256: { required: true, expected: SHA256_EXPECTED },
  path: { required: true, expected: FILE_PATH_EXPECTED },
  size: { expected: 'a whole number of bytes, 0 or more' },
}

export const STAGE_RULES: Record<string, Rule> = {
  name: { required: true, expected: `a stage name of ${LABEL_EXPECTED}` },
  path: { required: true, expected: STAGE_PATH_EXPECTED },
}

export const PACKAGE_REPOSITORY_RULES: Record<string, Rule> = {
  name: { required: true, expected: `a repository name of ${LABEL_EXPECTED}` },
  apt: { expected: 'an apt source {mirror, suite or suites, components, architectures, keyrings, trusted}' },
  rpm: { expected: 'an rpm source {baseurl, architectures, keyrings, signed, trusted}' },
  packages: { required: true, expected: `a list of packages, each ${PACKAGE_NAME_EXPECTED}` },
  kernels: { expected: 'a list of kernel versions as `uname -r` prints them, such as 5.15.0-91-generic' },
  baseline: { expected: 'a mapping {priorities, packages}: what the nodes already have' },
  nodes: {
    expected:
      'all (node-setup.sh sets the repository up on every node of its release; the default) or chosen (only where --repository names it, e.g. GPU nodes)',
  },
}

export const APT_SOURCE_RULES: Record<string, Rule> = {
  mirror: { required: true, expected: FILE_URL_EXPECTED },
  suite: { expected: 'a suite or codename, such as jammy or bookworm' },
  suites: {
    expected: 'a list of suites of the archive read together, such as [jammy, jammy-updates, jammy-security]',
  },
  components: { expected: 'a list of components, such as [main, universe]' },
  architectures: { expected: "a list of Debian architectures, the nodes' own first, such as [amd64]" },
  keyrings: {
    expected: "a list of OpenPGP keyring files (absolute, or relative to the definition's folder)",
  },
  trusted: { expected: 'true or false' },
}

export const RPM_SOURCE_RULES: Record<string, Rule> = {
  baseurl: { required: true, expected: `${FILE_URL_EXPECTED} (the folder holding repodata/)` },
  signed: { expected: 'repomd (the keyrings sign repodata/repomd.xml) or packages (they sign every .rpm)' },
  architectures: { expected: 'a list of rpm architectures, such as [x86_64, noarch]' },
  keyrings: {
    expected: "a list of OpenPGP public key files (absolute, or relative to the definition's folder)",
  },
  trusted: { expected: 'true or false' },
}

export const BASELINE_RULES: Record<string, Rule> = {
  priorities: { expected: 'a list of apt priorities: required, important, standard' },
  packages: { expected: 'a list of package names the nodes have' },
}
