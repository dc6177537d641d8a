/**
 * The catalogue of task kinds: every kind of task the core starts, with what it does and the structured data its
 * `task.start` event carries. A task's title is for people and may change; its `kind` and `data` are stable, for
 * tests and `--json` consumers. docs/events.md is generated from this file (scripts/gen-events-doc.ts); the `data`
 * column there is the text of the types in `TaskData` below.
 */
import type { ObjectRefData } from './codes.js'

/** The structured data of each kind's `task.start` event (`undefined`: it carries none). */
export interface TaskData {
  // bundle
  bundle: { name: string; version: string }
  'bundle.charts': undefined
  'bundle.chart': { chart: string; version?: string }
  'bundle.images': undefined
  'bundle.files': undefined
  'bundle.packages': undefined
  'bundle.package-repository': { repository: string; format: 'apt' | 'rpm' }
  'bundle.installer': undefined
  'bundle.delta': { base: string }
  'bundle.fetch': undefined
  'bundle.sign': undefined
  'bundle.signatures': { folder: string }
  // apt packages
  'apt.resolve': { mirror: string; suite: string }
  'apt.download': { packages: number }
  'apt.repository': { dir: string }
  // verify
  verify: { name: string; version: string; mode: string }
  'verify.rehash': undefined
  // serve
  serve: { name: string; version: string }
  // push
  push: { target: string }
  'push.check': { registry: string }
  'push.artifacts': { registry: string }
  'push.artifact': { artifact: 'image' | 'chart'; source: string }
  // publish and pull
  publish: { reference: string; name: string; version: string }
  'publish.hash': { file: string; size: number; chunks: number; chunkSize: number }
  'publish.check': { reference: string; blobs: number }
  'publish.upload': { reference: string; blobs: number }
  pull: { reference: string; outputDir: string }
  'pull.existing': { file: string }
  'pull.download': { reference: string; file: string; chunks: number }
  'pull.verify': { file: string; digest: string }
  'pull.signature': { file: string; keys: number; chunks: number }
  // install
  install: { name: string; version: string; dryRun: boolean }
  'install.load': undefined
  'install.preflight': undefined
  'install.serve': { url: string }
  'helm.unpack': { member: string }
  'stage.apply': { stage: string }
  'stage.check': { stage: string }
  'stage.release': { namespace: string; release: string; chart: string; version: string }
  'stage.object': { ref: ObjectRefData }
  'stage.wait': { ref: ObjectRefData; rule?: { jsonPath: string; equals?: string } }
  'install.prune': undefined
  // uninstall
  uninstall: { name: string; version: string }
  'uninstall.group': { group: string }
  'remove.release': { namespace: string; release: string }
  'remove.wait': { objects: number }
  // audit
  audit: undefined
  'audit.list': undefined
  'audit.check': { images: number }
}

export type TaskKind = keyof TaskData

/** Every kind, in the order docs/events.md lists them, with one line on what its task does. */
export const TASK_KINDS = {
  bundle: 'bundle: the whole run, from the definition to the bundle file.',
  'bundle.charts': 'Resolves every chart of the definition (one `bundle.chart` each).',
  'bundle.chart': 'Fetches one chart, vendors its dependencies and renders it to find its images.',
  'bundle.images': 'Resolves every image to a digest per platform.',
  'bundle.files': 'Sizes the files of the definition.',
  'bundle.packages': 'Resolves the package repositories (one `bundle.package-repository` each).',
  'bundle.package-repository':
    'Resolves the package closure of one apt or rpm repository and signs its metadata.',
  'bundle.installer': 'Adds the self-contained installer given with --installer.',
  'bundle.delta': 'Leaves out of a delta bundle the members its base (--base) already holds.',
  'bundle.fetch': 'Fetches the blobs and files into the bundle (progress in bytes).',
  'bundle.sign': 'Signs bundle.json with the bundle key (bundle.json.sig), before the file is written.',
  'bundle.signatures': 'Checks the signatures of the rpm packages of one folder.',
  'apt.resolve': 'Resolves apt packages against a mirror and suite.',
  'apt.download': 'Downloads the .deb files (progress in bytes).',
  'apt.repository': 'Writes the signed apt repository.',
  verify: 'verify: checks a bundle (quick or full).',
  'verify.rehash': 'Hashes every member of the bundle again (full verification; progress in bytes).',
  serve: 'serve: serves a bundle as a registry and file server.',
  push: 'push: the whole push of a bundle into a registry.',
  'push.check': 'Asks the target registry what it already holds.',
  'push.artifacts': 'Pushes what the registry lacks (one `push.artifact` each; progress in bytes).',
  'push.artifact': 'Pushes one image or chart: its blobs, then its manifests.',
  publish: 'publish: puts a bundle file into an OCI registry as one chunked artifact, manifest last.',
  'publish.hash':
    'Hashes the bundle file and each of its chunks (remembered for a file hashed before; progress in bytes).',
  'publish.check':
    'Asks the registry which of the config and chunk blobs it already holds (progress in blobs).',
  'publish.upload': 'Uploads the blobs the registry lacks, each resumable (progress in bytes).',
  pull: 'pull: gets a published bundle back from an OCI registry as the identical file or split volumes.',
  'pull.existing':
    'Hashes a complete output of an earlier pull, which is kept when it is this bundle (progress in bytes).',
  'pull.download':
    'Downloads the chunks not yet on disk into the partial file, each checked against its digest (progress in bytes).',
  'pull.verify': "Hashes the whole pulled file against the bundle's digest before it takes its final name.",
  'pull.signature':
    'Checks the signature of bundle.json as verify does (`keys`: how many --key files): with --key first on the first `chunks` chunks, before the others are downloaded; then on the finished file before it takes its final name, or on a complete file already there.',
  install: 'install (or install --dry-run): applies the stages of a bundle.',
  'install.load': "Loads the bundle's stages and fills the generated values.",
  'install.preflight': 'Checks the cluster before anything is applied.',
  'install.serve': 'Keeps serving the bundle for the cluster until Ctrl-C.',
  'helm.unpack': 'Unpacks the helm binary the bundle ships.',
  'stage.apply': 'Applies one stage and waits until it is ready.',
  'stage.check': 'Checks that an installed stage is still ready (nothing is applied).',
  'stage.release': 'Installs or upgrades one Helm release of a stage.',
  'stage.object': 'Applies one object (server-side apply).',
  'stage.wait':
    "Waits until one object is ready (by its kind's rule or a custom one), or a CRD is established.",
  'install.prune': 'Removes what the new bundle no longer ships.',
  uninstall: 'uninstall: removes what the install applied.',
  'uninstall.group': 'Removes one group (a stage, or the install state).',
  'remove.release': 'Uninstalls one Helm release.',
  'remove.wait': 'Waits until the removed objects are gone.',
  audit: "audit: checks that the registry holds every image the cluster's workloads run.",
  'audit.list': 'Lists the workloads of the cluster.',
  'audit.check': 'Checks each image the workloads use (progress in images).',
} as const satisfies Record<TaskKind, string>
