import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { CORE_SCHEMA, loadAll, mergeTag } from 'js-yaml'
import { AirgapError } from '../errors.js'
import { isPlainObject, type KubeObject } from '../stages/objects.js'

/**
 * Runs the helm binary (the one carried in the bundle, or given) against the target cluster. Releases are installed
 * with `helm upgrade --install` from a chart archive taken out of the bundle, never with --wait: readiness is the
 * installer's own, on the objects of `helm get manifest`. Helm's cache, configuration and data live in the run's
 * work folder, so the user's helm setup (repositories, plugins) neither matters nor changes.
 */
export interface HelmRunnerOptions {
  helm: string
  kubeconfig: string
  context?: string
  /** Holds helm's cache/config/data folders for this run. */
  workDir: string
}

export interface ReleaseStatus {
  status: string
  revision: number
}

export class HelmError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message)
    this.name = 'HelmError'
  }
}

const yamlSchema = CORE_SCHEMA.withTags(mergeTag)

export class HelmRunner {
  constructor(private readonly options: HelmRunnerOptions) {}

  /**
   * Installs or upgrades a release. A release left half-done by an interrupted helm (pending-install,
   * pending-upgrade, pending-rollback) is first cleared, so a rerun after Ctrl-C or kill -9 goes through.
   */
  async upgradeInstall(o: {
    release: string
    namespace: string
    chartFile: string
    valuesFiles: string[]
    timeoutMs: number
    signal?: AbortSignal
  }): Promise<{ revision: number; recovered?: string }> {
    let recovered: string | undefined
    const current = await this.status(o.release, o.namespace, o.signal)
    if (current?.status === 'pending-install') {
      await this.uninstall(o.release, o.namespace, o.signal)
      recovered = 'removed the release an interrupted install left pending'
    } else if (current?.status === 'pending-upgrade' || current?.status === 'pending-rollback') {
      await this.run(['rollback', o.release, '--namespace', o.namespace, ...this.kube()], o.signal)
      recovered = `rolled back the ${current.status} an interrupted helm left`
    }
    const args = [
      'upgrade',
      '--install',
      o.release,
      o.chartFile,
      '--namespace',
      o.namespace,
      '--create-namespace',
      '--timeout',
      `${Math.max(1, Math.ceil(o.timeoutMs / 1000))}s`,
      '--output',
      'json',
      ...o.valuesFiles.flatMap((f) => ['--values', f]),
      ...this.kube(),
    ]
    const { stdout } = await this.run(args, o.signal)
    const revision = releaseRevision(stdout, this.options.helm, `${o.namespace}/${o.release}`)
    return recovered ? { revision, recovered } : { revision }
  }

  /** The release's status, or undefined when there is no such release. */
  async status(release: string, namespace: string, signal?: AbortSignal): Promise<ReleaseStatus | undefined> {
    try {
      const { stdout } = await this.run(
        ['status', release, '--namespace', namespace, '--output', 'json', ...this.kube()],
        signal,
      )
      const parsed = JSON.parse(stdout) as { version?: number; info?: { status?: string } }
      return { status: parsed.info?.status ?? 'unknown', revision: parsed.version ?? 0 }
    } catch (error) {
      if (error instanceof HelmError && /not found/i.test(error.stderr)) return undefined
      throw error
    }
  }

  /** The objects of the release's current revision (hooks excluded), or undefined when there is no such release. */
  async manifest(
    release: string,
    namespace: string,
    signal?: AbortSignal,
  ): Promise<KubeObject[] | undefined> {
    let stdout: string
    try {
      ;({ stdout } = await this.run(
        ['get', 'manifest', release, '--namespace', namespace, ...this.kube()],
        signal,
      ))
    } catch (error) {
      if (error instanceof HelmError && /not found/i.test(error.stderr)) return undefined
      throw error
    }
    return parseManifestObjects(stdout)
  }

  /** Uninstalls a release; false when it did not exist. */
  async uninstall(release: string, namespace: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.run(['uninstall', release, '--namespace', namespace, ...this.kube()], signal)
      return true
    } catch (error) {
      if (error instanceof HelmError && /not found/i.test(error.stderr)) return false
      throw error
    }
  }

  private kube(): string[] {
    return [
      '--kubeconfig',
      this.options.kubeconfig,
      ...(this.options.context ? ['--kube-context', this.options.context] : []),
    ]
  }

  private run(args: string[], signal?: AbortSignal): Promise<{ stdout: string; stderr: string }> {
    const home = this.options.workDir
    const env = {
      ...process.env,
      HELM_CACHE_HOME: join(home, 'helm', 'cache'),
      HELM_CONFIG_HOME: join(home, 'helm', 'config'),
      HELM_DATA_HOME: join(home, 'helm', 'data'),
    }
    return new Promise((resolve, reject) => {
      execFile(
        this.options.helm,
        args,
        { env, signal, maxBuffer: 256 << 20, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (!error) {
            resolve({ stdout, stderr })
            return
          }
          const e = error as NodeJS.ErrnoException & { code?: string | number }
          if (signal?.aborted) reject(signal.reason ?? error)
          else if (e.code === 'ENOENT' || e.code === 'EACCES')
            reject(
              new AirgapError('E_ENVIRONMENT', `Cannot run helm at ${this.options.helm}: ${e.message}`, {
                hints: ['Give the helm binary (it is in the bundle under files/) with --helm.'],
              }),
            )
          else {
            // Never stdout: it is the release JSON (or YAML), values and secrets included. stderr only, redacted.
            const text = redactHelmText(stderr.trim()) || `helm exited with code ${e.code ?? 'unknown'}`
            reject(new HelmError(`helm ${args[0]} failed: ${text.split('\n').slice(-15).join('\n')}`, text))
          }
        },
      )
    })
  }
}

/**
 * The revision of the release `helm upgrade --install --output json` printed. Output that is not the release JSON is
 * an error (a wrong or broken helm binary): recording revision 0 would hide it.
 */
function releaseRevision(stdout: string, helm: string, release: string): number {
  let version: unknown
  try {
    version = (JSON.parse(stdout) as { version?: unknown } | null)?.version
  } catch {
    version = undefined
  }
  if (typeof version === 'number' && Number.isSafeInteger(version) && version > 0) return version
  throw new AirgapError(
    'E_ENVIRONMENT',
    `helm (${helm}) installed ${release} but did not print the release as JSON with its revision; its output is not shown, it may hold the release's values.`,
    {
      hints: [
        'Use the helm binary the bundle carries (the default), or a helm 3 that supports `upgrade --output json`.',
        `Check the release with \`helm status ${release.split('/')[1]} --namespace ${release.split('/')[0]}\`.`,
      ],
    },
  )
}

/**
 * helm's stderr with what looks like a secret hidden: the value after password/token/secret/key-like keys (YAML
 * `key: value`, `key=value`, JSON `"key":"value"`), and credentials in URLs.
 */
export function redactHelmText(text: string): string {
  return text
    .replace(
      /("?[\w.-]*(?:password|passwd|secret|token|apikey|api_key|credential)[\w.-]*"?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,}\]]+)/gi,
      '$1<redacted>',
    )
    .replace(/(\/\/[^/\s:@]+:)[^@\s/]+@/g, '$1<redacted>@')
}

/** The objects in a multi-document YAML stream (`helm get manifest` output). */
export function parseManifestObjects(text: string): KubeObject[] {
  const out: KubeObject[] = []
  for (const doc of loadAll(text, { schema: yamlSchema, json: true })) {
    if (!isPlainObject(doc) || typeof doc.kind !== 'string' || typeof doc.apiVersion !== 'string') continue
    if (doc.kind.endsWith('List') && Array.isArray(doc.items)) {
      out.push(...parseManifestObjects(doc.items.map((i) => JSON.stringify(i)).join('\n---\n')))
      continue
    }
    const metadata = isPlainObject(doc.metadata) ? doc.metadata : {}
    if (typeof metadata.name !== 'string') continue
    out.push(doc as KubeObject)
  }
  return out
}
