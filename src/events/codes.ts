/**
 * The catalogue of log codes: every code a `log` event may carry, with its level, what it means, and the structured
 * data its events carry. A log event's `code` is typed as one of these codes, so an undeclared or misspelt code fails
 * the typecheck, and its `data` is typed per code. docs/events.md is generated from this file
 * (scripts/gen-events-doc.ts); the `data` column there is the text of the types in `LogData` below.
 */
export type LogLevel = 'debug' | 'info' | 'warn'

/** A Kubernetes object, as event data names it (the same shape as the stages' ObjectRef). */
export interface ObjectRefData {
  apiVersion: string
  kind: string
  /** Absent for cluster-scoped objects. */
  namespace?: string
  name: string
}

/** The structured data of each code's events (`undefined`: the event carries none). */
export interface LogData {
  // bundle
  W_INSTALLER_PLATFORM: { file: string; platform: string; platforms: string[] }
  W_RESUME_DISCARDED: { journal: string; problem: string }
  W_BUNDLE_NOT_SIGNED: undefined
  W_BUNDLE_UNSIGNED: { bundle: string }
  I_BUNDLE_SIGNED: { bundle: string; fingerprint: string }
  I_RESUME: { output: string } | { bundle: string; version: string; stage: string }
  W_IMAGE_COMPLETED_AT_RUN_TIME: { chart: string; image: string }
  W_STAGE_YAML: { stage: string; file: string }
  W_STAGE_IMAGE_TEMPLATED: { image: string; sources: string[] }
  // charts
  CHART_GIT_RESOLVED: { url: string; ref: string; commit: string; path: string }
  CHART_GIT_REF_MOVABLE: { url: string; ref: string; commit: string }
  CHART_GIT_CACHED: { url: string; commit: string }
  CHART_GIT_ENTRY_SKIPPED: { file: string; commit: string }
  CHART_NO_DIGEST: { repo: string; chart: string; version: string }
  CHART_DEPENDENCY_RANGE: { chart: string; dependency: string; range: string; version: string }
  // registries and pushes
  W_CREDENTIALS: undefined
  W_RETRY: { url: string; delayMs: number }
  I_UPLOAD_RESUMED: undefined
  W_UPLOAD_RESTARTED: undefined
  W_UPLOAD_SMALLER_CHUNKS: undefined
  W_TAG_MOVED: { registry: string; repository: string; reference: string; previous: string; digest: string }
  // publish and pull
  W_PULL_REPLACES: { file: string }
  W_PULL_NAME_MISMATCH: { file: string; found: string; published: string }
  W_PULL_SIGNER_MISMATCH: { file: string; found: string; published: string }
  I_PULL_RESUMED: { index: number; digest: string; offset: number }
  W_PULL_CHUNK_REFETCHED: { index: number; digest: string; actual: string }
  W_PULL_RETRY: { index: number; offset: number; attempt: number; problem: string }
  // serve
  I_SITE_CA: { file: string }
  W_SERVE_REQUEST: { method: string; url: string }
  W_SERVE_WORKER_EXITED: { pid: number; reason: string }
  W_REGISTRY_READ: { digest: string }
  W_REGISTRY_ERROR: { method: string; url: string }
  W_REGISTRY_AUTH: { user: string; method: string; path: string; address: string; limited: boolean }
  I_REGISTRY_PUSH: { user?: string; repository: string; reference: string; digest: string }
  I_HTPASSWD_RELOADED: { file: string; users: number }
  I_PULL_REGISTRY: { url: string; prefix?: string; record: string }
  W_HTPASSWD_REMOVED: { file: string }
  W_HTPASSWD_UNREADABLE: { file: string; problem: string }
  W_REGISTRY_DISK_FULL: { method: string; url: string }
  W_SERVE_CLEARTEXT: undefined
  // install and uninstall
  W_LOW_DISK: { dir: string; stateDir: string; freeBytes: number; minBytes: number }
  I_HELM: {
    path: string
    from: 'flag' | 'ASTRAGO_HELM' | 'bundle' | 'PATH'
    member?: string
    reused?: boolean
  }
  I_NOTHING_TO_DO: { namespace: string }
  I_UPGRADE: { from: string; to: string }
  W_PRUNE_KEPT: { namespace: string }
  W_PULL_SERVER_ENDS: { where: string }
  W_HELM_RECOVERED: { namespace: string; release: string }
  W_LOCK_TAKEN_OVER: { holder: string; renewTime?: string }
  W_LOCK_LOST: { lock: string; holder: string }
  W_LOCK_RENEW: undefined
  W_LOCK_RELEASE: undefined
  I_KEPT_GENERATED: { ref: ObjectRefData }
  // audit
  W_IMAGE_MISSING: { image: string }
  W_IMAGE_INVALID: { image: string; reason?: string }
}

export type LogCode = keyof LogData

export interface LogCodeEntry {
  level: LogLevel
  /** One line: when the event is emitted and what it means. */
  description: string
}

/** Every code, in the order docs/events.md lists them. */
export const LOG_CODES = {
  W_INSTALLER_PLATFORM: {
    level: 'warn',
    description: "bundle: the installer given with --installer runs on none of the bundle's platforms.",
  },
  W_BUNDLE_NOT_SIGNED: {
    level: 'warn',
    description:
      'bundle: gpg is not installed and no --signing-key was given, so bundle.json is left unsigned.',
  },
  W_BUNDLE_UNSIGNED: {
    level: 'warn',
    description:
      'verify, install, pull or publish: the bundle is not signed (no --key was given to require a signature).',
  },
  I_BUNDLE_SIGNED: {
    level: 'info',
    description:
      'verify, install, pull or publish: bundle.json matches its signature by the key it names (not checked against a trusted key).',
  },
  W_RESUME_DISCARDED: {
    level: 'warn',
    description:
      'bundle: the journal of an interrupted run cannot be trusted; the bundle is written from scratch.',
  },
  I_RESUME: {
    level: 'info',
    description:
      'bundle or install: an interrupted run is resumed (bundle: at its journal; install: at a stage).',
  },
  W_IMAGE_COMPLETED_AT_RUN_TIME: {
    level: 'warn',
    description:
      "bundle: a chart's operator completes an image name at run time (adds the node OS) and the chart lists no such image.",
  },
  W_STAGE_YAML: { level: 'warn', description: 'bundle: images could not be read from a stage manifest.' },
  W_STAGE_IMAGE_TEMPLATED: {
    level: 'warn',
    description:
      'bundle: a stage manifest names an image chosen by site values; it is left out of the bundle.',
  },
  CHART_GIT_RESOLVED: {
    level: 'info',
    description: 'bundle: a git chart source resolved to a commit and a chart folder.',
  },
  CHART_GIT_REF_MOVABLE: {
    level: 'warn',
    description:
      'bundle: a git chart source names a branch or tag, which may move; a rebuild may take another commit.',
  },
  CHART_GIT_CACHED: {
    level: 'debug',
    description: 'bundle: the commit of a git chart source is already cached.',
  },
  CHART_GIT_ENTRY_SKIPPED: {
    level: 'warn',
    description: 'bundle: a symbolic link or submodule in a git chart folder is left out of the chart.',
  },
  CHART_NO_DIGEST: {
    level: 'warn',
    description:
      'bundle: a chart repository index has no sha256 for a chart, so it is not verified against one.',
  },
  CHART_DEPENDENCY_RANGE: {
    level: 'warn',
    description: 'bundle: a chart dependency is a version range; a rebuild may take a newer version.',
  },
  W_CREDENTIALS: {
    level: 'warn',
    description:
      'bundle or push: Docker credentials are there but unusable (an unreadable config, a failing credential helper, an undecodable entry); the registry is asked anonymously.',
  },
  W_RETRY: {
    level: 'warn',
    description: 'A registry request failed in a way worth retrying; it is retried.',
  },
  I_UPLOAD_RESUMED: {
    level: 'info',
    description: 'push or publish: an interrupted blob upload resumes where the registry has it.',
  },
  W_UPLOAD_RESTARTED: {
    level: 'warn',
    description: 'push or publish: a blob upload could not resume and starts over.',
  },
  W_UPLOAD_SMALLER_CHUNKS: {
    level: 'warn',
    description:
      'push or publish: the registry refused a chunk as too large; the upload goes on in smaller chunks.',
  },
  W_TAG_MOVED: {
    level: 'warn',
    description:
      "push or publish: a tag of the target registry pointed at another digest (publish: another bundle or artifact); it now points at the bundle's.",
  },
  W_PULL_REPLACES: {
    level: 'warn',
    description:
      "pull: the output folder holds a file under the bundle's name that is not this bundle (or not in the asked layout); it is replaced once the pull is complete and checked.",
  },
  W_PULL_NAME_MISMATCH: {
    level: 'warn',
    description:
      "pull: the pulled file's bundle.json names another bundle or version than the artifact was published as (found and published: `NAME VERSION`).",
  },
  W_PULL_SIGNER_MISMATCH: {
    level: 'warn',
    description:
      'pull: the signer recorded when the bundle was published (io.astrago.airgap.bundle.signer) is not the one that signed the pulled bundle.json (found: a fingerprint, or `unsigned`); the annotation is information only, the signature check decides.',
  },
  I_PULL_RESUMED: {
    level: 'info',
    description:
      'pull: a chunk continues at the byte where an interrupted run left it (the bytes on disk are hashed again first).',
  },
  W_PULL_CHUNK_REFETCHED: {
    level: 'warn',
    description:
      'pull: a downloaded chunk did not match its layer digest; it is fetched again from its start, once.',
  },
  W_PULL_RETRY: {
    level: 'warn',
    description: 'pull: downloading a chunk broke off; it continues from the byte it reached, after a pause.',
  },
  I_SITE_CA: { level: 'info', description: 'serve: the site CA was created.' },
  W_SERVE_REQUEST: { level: 'warn', description: 'serve: a request to the site server failed unexpectedly.' },
  W_SERVE_WORKER_EXITED: {
    level: 'warn',
    description: 'serve --workers: a worker process ended while serving; another is started a second later.',
  },
  W_REGISTRY_READ: {
    level: 'warn',
    description: 'serve: sending a blob or manifest out of the bundle failed.',
  },
  W_REGISTRY_ERROR: {
    level: 'warn',
    description: 'serve: a registry request failed unexpectedly; it was answered with UNKNOWN.',
  },
  W_REGISTRY_AUTH: { level: 'warn', description: 'serve: the registry refused the credentials of a user.' },
  I_REGISTRY_PUSH: { level: 'info', description: 'serve: a user pushed a manifest to the site registry.' },
  I_HTPASSWD_RELOADED: { level: 'info', description: 'serve: the htpasswd file changed and was read again.' },
  I_PULL_REGISTRY: {
    level: 'info',
    description:
      'install or serve: node setup points containerd first at the registry an install pushed the bundle to (--push-to).',
  },
  W_HTPASSWD_REMOVED: {
    level: 'warn',
    description: 'serve: the htpasswd file is gone; none of its users may push until it is back.',
  },
  W_HTPASSWD_UNREADABLE: {
    level: 'warn',
    description:
      'serve: the htpasswd file cannot be read or parsed; none of its users may push until it is fixed.',
  },
  W_REGISTRY_DISK_FULL: {
    level: 'warn',
    description: "serve: an upload was refused (507) because the overlay's disk is (nearly) full.",
  },
  W_SERVE_CLEARTEXT: {
    level: 'warn',
    description:
      'serve: plain HTTP (--insecure) with registry users: their passwords cross the network in cleartext.',
  },
  W_LOW_DISK: { level: 'warn', description: 'install: the state folder has little free space.' },
  I_HELM: {
    level: 'info',
    description: 'install: which helm binary the install uses, and where it came from.',
  },
  I_NOTHING_TO_DO: {
    level: 'info',
    description: 'install or uninstall: nothing to do (installed and ready, or no install state).',
  },
  I_UPGRADE: { level: 'info', description: 'install: an installed bundle is upgraded to another version.' },
  W_PULL_SERVER_ENDS: {
    level: 'warn',
    description:
      'install: the nodes pull from the server this command runs, which stops with it; keep a server running or push into an in-cluster registry.',
  },
  W_PRUNE_KEPT: {
    level: 'warn',
    description: 'install: a namespace the new bundle no longer ships still holds objects; it is kept.',
  },
  W_HELM_RECOVERED: {
    level: 'warn',
    description: 'install: a Helm release left in a pending state by an interrupted run was recovered.',
  },
  W_LOCK_LOST: {
    level: 'warn',
    description:
      'install or uninstall: the install lock (a Lease) was taken by another holder, deleted, or not renewed in time; the run stops before changing anything more.',
  },
  W_LOCK_TAKEN_OVER: {
    level: 'warn',
    description: 'install or uninstall: the lock of an interrupted run (no longer renewed) is taken over.',
  },
  W_LOCK_RENEW: {
    level: 'warn',
    description: 'install or uninstall: the install lock could not be renewed.',
  },
  W_LOCK_RELEASE: {
    level: 'warn',
    description: 'install or uninstall: the install lock could not be released; it expires on its own.',
  },
  I_KEPT_GENERATED: {
    level: 'info',
    description: 'uninstall: the passwords generated for the site are kept (uninstall --purge removes them).',
  },
  W_IMAGE_MISSING: {
    level: 'warn',
    description: 'audit: a workload runs an image the registry does not hold.',
  },
  W_IMAGE_INVALID: {
    level: 'warn',
    description: 'audit: a workload runs an image the registry holds, but not as the bundle locked it.',
  },
} as const satisfies Record<LogCode, LogCodeEntry>

/** The level the catalogue gives a code. */
export type LogLevelOf<C extends LogCode> = (typeof LOG_CODES)[C]['level']
