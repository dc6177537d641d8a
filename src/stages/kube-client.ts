import * as k8s from '@kubernetes/client-node'
import { AirgapError } from '../errors.js'
import { sleep } from '../net/retry.js'
import type { KubeObject, ObjectRef } from './objects.js'

/**
 * The installer's Kubernetes client: @kubernetes/client-node's KubernetesObjectApi (kubeconfig loading, every auth
 * method, TLS, discovery of kinds) with requests that keep objects as plain JSON. The library's typed models are
 * bypassed on purpose: serialising a manifest through them silently drops every field the model does not know, and
 * for CRDs even `x-kubernetes-preserve-unknown-fields` and `default` (see docs/stages.md, "Why plain JSON").
 *
 * Every request has a timeout and honours an AbortSignal; transient failures (connection refused or reset, 429,
 * 5xx) are retried a few times with backoff. Server-side apply uses the field manager `astrago-airgap`, forces
 * conflicts, and validates fields strictly (an unknown field is an error, as with kubectl).
 */
export const FIELD_MANAGER = 'astrago-airgap'

export interface KubeClientOptions {
  /** Path of the kubeconfig file. */
  kubeconfig: string
  /** A context of that kubeconfig; default its current context. */
  context?: string
  /** Per-request timeout (default 30 s). */
  requestTimeoutMs?: number
}

/** A refusal or failure of the Kubernetes API, with the Status the server returned. */
export class KubeApiError extends Error {
  constructor(
    /** HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    /** The Status reason (NotFound, Forbidden, Invalid, Conflict, …) or a transport error code. */
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'KubeApiError'
  }

  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500
  }
}

export interface ResourceInfo {
  /** The plural resource name (deployments). */
  name: string
  namespaced: boolean
  verbs: string[]
}

interface RawResponse {
  status: number
  text: string
}

/** KubernetesObjectApi with raw JSON requests and a discovery that honours timeouts. */
class ObjectApi extends k8s.KubernetesObjectApi {
  timeoutMs = 30_000
  private readonly discovery = new Map<string, Promise<ResourceInfo[] | undefined>>()

  /** One HTTP request with the kubeconfig's credentials and TLS settings. */
  async send(
    method: k8s.HttpMethod,
    path: string,
    options: {
      query?: Record<string, string | undefined>
      body?: string
      contentType?: string
      accept?: string
      signal?: AbortSignal
    } = {},
  ): Promise<RawResponse> {
    const context = this.configuration.baseServer.makeRequestContext(path, method)
    for (const [key, value] of Object.entries(options.query ?? {}))
      if (value !== undefined) context.setQueryParam(key, value)
    context.setHeaderParam('Accept', options.accept ?? 'application/json')
    if (options.body !== undefined) {
      context.setHeaderParam('Content-Type', options.contentType ?? 'application/json')
      context.setBody(options.body)
    }
    const timeout = AbortSignal.timeout(this.timeoutMs)
    context.setSignal(options.signal ? AbortSignal.any([options.signal, timeout]) : timeout)
    await this.configuration.authMethods.default?.applySecurityAuthentication(context)
    try {
      const response = await this.configuration.httpApi.send(context).toPromise()
      return { status: response.httpStatusCode, text: await response.body.text() }
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason ?? error
      const e = error as { code?: string; message?: string; type?: string }
      const reason = timeout.aborted ? 'Timeout' : (e.code ?? e.type ?? 'TransportError')
      const what = timeout.aborted
        ? `no answer within ${this.timeoutMs / 1000}s`
        : (e.message ?? String(error))
      throw new KubeApiError(0, reason, `${method} ${path}: ${what}`, { cause: error })
    }
  }

  /** Resources of one group/version, cached; undefined when the group/version does not exist (yet). */
  async resources(
    apiVersion: string,
    refresh: boolean,
    signal?: AbortSignal,
  ): Promise<ResourceInfo[] | undefined> {
    const cached = this.discovery.get(apiVersion)
    if (cached && !refresh) return cached
    const loading = (async () => {
      const response = await this.send(k8s.HttpMethod.GET, this.apiVersionPath(apiVersion), { signal })
      if (response.status === 404) return undefined
      if (response.status >= 300) throw apiError(response, `discovering ${apiVersion}`)
      const list = JSON.parse(response.text) as { resources?: (ResourceInfo & { kind: string })[] }
      return (list.resources ?? [])
        .filter((r) => !r.name.includes('/'))
        .map((r) => ({ name: r.name, namespaced: r.namespaced, verbs: r.verbs, kind: r.kind }))
    })()
    this.discovery.set(apiVersion, loading)
    loading.catch(() => this.discovery.delete(apiVersion))
    return loading
  }

  async resourceOf(
    apiVersion: string,
    kind: string,
    signal?: AbortSignal,
  ): Promise<ResourceInfo | undefined> {
    const find = (list: ResourceInfo[] | undefined) =>
      list?.find((r) => (r as ResourceInfo & { kind: string }).kind === kind)
    const first = find(await this.resources(apiVersion, false, signal))
    if (first) return first
    // A kind can appear later (a CRD applied a moment ago): ask again before saying it does not exist.
    return find(await this.resources(apiVersion, true, signal))
  }

  pathOf(apiVersion: string): string {
    return this.apiVersionPath(apiVersion)
  }

  /** The library's own discovery goes through ours, so it has the same timeout and cache. */
  protected override async resource(
    apiVersion: string,
    kind: string,
  ): Promise<k8s.V1APIResource | undefined> {
    const found = await this.resourceOf(apiVersion, kind)
    return found
      ? ({
          name: found.name,
          namespaced: found.namespaced,
          kind,
          singularName: '',
          verbs: found.verbs,
        } as k8s.V1APIResource)
      : undefined
  }
}

export class KubeClient {
  private constructor(
    private readonly api: ObjectApi,
    /** The API server URL. */
    readonly server: string,
    readonly context: string,
  ) {}

  /** Loads a kubeconfig file; E_INPUT when it cannot be read, E_USAGE when the context does not exist. */
  static load(options: KubeClientOptions): KubeClient {
    const kc = new k8s.KubeConfig()
    try {
      kc.loadFromFile(options.kubeconfig)
    } catch (error) {
      throw new AirgapError(
        'E_INPUT',
        `Cannot read the kubeconfig ${options.kubeconfig}: ${(error as Error).message}`,
        {
          cause: error,
          hints: ['Give the kubeconfig of the target cluster with --kubeconfig.'],
        },
      )
    }
    if (options.context) {
      if (!kc.getContextObject(options.context)) {
        throw new AirgapError(
          'E_USAGE',
          `The kubeconfig ${options.kubeconfig} has no context "${options.context}".`,
          {
            hints: [
              `Its contexts: ${
                kc
                  .getContexts()
                  .map((c) => c.name)
                  .join(', ') || 'none'
              }.`,
            ],
          },
        )
      }
      kc.setCurrentContext(options.context)
    }
    const cluster = kc.getCurrentCluster()
    if (!cluster) {
      throw new AirgapError(
        'E_INPUT',
        `The kubeconfig ${options.kubeconfig} has no current cluster${options.context ? '' : ' (set current-context or give a context)'}.`,
      )
    }
    const api = kc.makeApiClient(ObjectApi)
    if (options.requestTimeoutMs) api.timeoutMs = options.requestTimeoutMs
    return new KubeClient(api, cluster.server, kc.getCurrentContext())
  }

  /** GET /version: the cluster's gitVersion (v1.34.4). */
  async serverVersion(signal?: AbortSignal): Promise<string> {
    const response = await this.retry(() => this.api.send(k8s.HttpMethod.GET, '/version', { signal }), signal)
    if (response.status >= 300) throw apiError(response, 'reading the server version')
    return String((JSON.parse(response.text) as { gitVersion?: string }).gitVersion ?? 'unknown')
  }

  /** The resource behind a kind, or undefined when the cluster does not serve it (yet). */
  async resourceOf(
    apiVersion: string,
    kind: string,
    signal?: AbortSignal,
  ): Promise<ResourceInfo | undefined> {
    return await this.retry(() => this.api.resourceOf(apiVersion, kind, signal), signal)
  }

  /** Server-side apply: creates or updates the fields this installer manages; returns the object as stored. */
  async apply(object: KubeObject, signal?: AbortSignal): Promise<KubeObject> {
    return this.write(k8s.HttpMethod.PATCH, object, 'applying', signal)
  }

  /** Creates an object; a KubeApiError with status 409 (AlreadyExists) when it is there already. */
  async create(object: KubeObject, signal?: AbortSignal): Promise<KubeObject> {
    return this.write(k8s.HttpMethod.POST, object, 'creating', signal)
  }

  /**
   * Replaces an object as read before: its metadata.resourceVersion is the precondition, so a KubeApiError with
   * status 409 (Conflict) says someone else changed it in between.
   */
  async replace(object: KubeObject, signal?: AbortSignal): Promise<KubeObject> {
    return this.write(k8s.HttpMethod.PUT, object, 'replacing', signal)
  }

  /** One write of an object: PATCH is server-side apply, POST a create (to the collection), PUT a replace. */
  private async write(
    method: k8s.HttpMethod,
    object: KubeObject,
    action: string,
    signal?: AbortSignal,
  ): Promise<KubeObject> {
    const { apiVersion, kind, metadata } = object
    const name = method === k8s.HttpMethod.POST ? undefined : metadata.name
    const path = await this.objectPath(apiVersion, kind, metadata.namespace, name, signal)
    const apply = method === k8s.HttpMethod.PATCH
    const response = await this.retry(
      () =>
        this.api.send(method, path, {
          query: apply
            ? { fieldManager: FIELD_MANAGER, force: 'true', fieldValidation: 'Strict' }
            : { fieldManager: FIELD_MANAGER },
          body: JSON.stringify(object),
          contentType: apply ? 'application/apply-patch+yaml' : 'application/json',
          signal,
        }),
      signal,
    )
    if (response.status >= 300) throw apiError(response, action)
    return JSON.parse(response.text) as KubeObject
  }

  /** The object as stored, or undefined when it does not exist (or its kind is not served). */
  async get(ref: ObjectRef, signal?: AbortSignal): Promise<KubeObject | undefined> {
    const resource = await this.resourceOf(ref.apiVersion, ref.kind, signal)
    if (!resource) return undefined
    const path = this.pathFor(ref.apiVersion, resource, ref.namespace, ref.name)
    const response = await this.retry(() => this.api.send(k8s.HttpMethod.GET, path, { signal }), signal)
    if (response.status === 404) return undefined
    if (response.status >= 300) throw apiError(response, 'reading')
    return JSON.parse(response.text) as KubeObject
  }

  /** Deletes an object (dependents in the background); false when it was not there. */
  async delete(ref: ObjectRef, signal?: AbortSignal): Promise<boolean> {
    const resource = await this.resourceOf(ref.apiVersion, ref.kind, signal)
    if (!resource) return false
    const path = this.pathFor(ref.apiVersion, resource, ref.namespace, ref.name)
    const response = await this.retry(
      () =>
        this.api.send(k8s.HttpMethod.DELETE, path, {
          body: JSON.stringify({ apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' }),
          signal,
        }),
      signal,
    )
    if (response.status === 404) return false
    if (response.status >= 300) throw apiError(response, 'deleting')
    return true
  }

  /** Lists objects of a kind, in one namespace or (namespace undefined) everywhere. */
  async list(
    apiVersion: string,
    kind: string,
    options: { namespace?: string; labelSelector?: string; fieldSelector?: string; limit?: number } = {},
    signal?: AbortSignal,
  ): Promise<KubeObject[]> {
    const resource = await this.resourceOf(apiVersion, kind, signal)
    if (!resource) return []
    const path = this.pathFor(apiVersion, resource, resource.namespaced ? options.namespace : undefined)
    const response = await this.retry(
      () =>
        this.api.send(k8s.HttpMethod.GET, path, {
          query: {
            labelSelector: options.labelSelector,
            fieldSelector: options.fieldSelector,
            limit: options.limit === undefined ? undefined : String(options.limit),
          },
          signal,
        }),
      signal,
    )
    if (response.status >= 300) throw apiError(response, `listing ${kind}`)
    return ((JSON.parse(response.text) as { items?: KubeObject[] }).items ?? []).map((item) => ({
      ...item,
      apiVersion,
      kind,
    }))
  }

  /** The last lines of a container's log; undefined when the node cannot serve it (no kubelet, pod gone). */
  async podLog(
    namespace: string,
    pod: string,
    options: { container?: string; tailLines?: number; previous?: boolean },
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`
    try {
      const response = await this.api.send(k8s.HttpMethod.GET, path, {
        query: {
          container: options.container,
          tailLines: String(options.tailLines ?? 20),
          previous: options.previous ? 'true' : undefined,
        },
        accept: 'text/plain',
        signal,
      })
      return response.status === 200 ? response.text : undefined
    } catch (error) {
      if (signal?.aborted) throw error
      return undefined
    }
  }

  /** SelfSubjectAccessReview: may the current user do `verb` on the resource? */
  async canI(
    attributes: { verb: string; group: string; resource: string; namespace?: string; name?: string },
    signal?: AbortSignal,
  ): Promise<{ allowed: boolean; reason?: string }> {
    const body = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: attributes },
    }
    const response = await this.retry(
      () =>
        this.api.send(k8s.HttpMethod.POST, '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
          body: JSON.stringify(body),
          signal,
        }),
      signal,
    )
    if (response.status >= 300) throw apiError(response, 'asking for access')
    const status = (JSON.parse(response.text) as { status?: { allowed?: boolean; reason?: string } }).status
    return { allowed: status?.allowed === true, reason: status?.reason || undefined }
  }

  private async objectPath(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    const resource = await this.resourceOf(apiVersion, kind, signal)
    if (!resource) {
      throw new KubeApiError(
        404,
        'UnknownKind',
        `the cluster does not serve ${kind} in ${apiVersion} (is its CustomResourceDefinition installed?)`,
      )
    }
    return this.pathFor(apiVersion, resource, namespace, name)
  }

  private pathFor(apiVersion: string, resource: ResourceInfo, namespace?: string, name?: string): string {
    const parts = [this.api.pathOf(apiVersion)]
    if (resource.namespaced && namespace) parts.push('namespaces', encodeURIComponent(namespace))
    parts.push(resource.name)
    if (name !== undefined) parts.push(encodeURIComponent(name))
    return parts.join('/')
  }

  /** Retries transient failures (unreachable, 429, 5xx) three times with backoff. */
  private async retry<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const delays = [300, 1000, 3000]
    for (let attempt = 0; ; attempt++) {
      let result: T
      try {
        result = await fn()
      } catch (error) {
        if (!(error instanceof KubeApiError) || !error.transient || attempt >= delays.length) throw error
        await sleep(delays[attempt]!, signal)
        continue
      }
      const status =
        typeof result === 'object' && result !== null ? (result as { status?: unknown }).status : undefined
      const permanent =
        status === 500 && /failed to create typed patch object/.test((result as RawResponse).text ?? '')
      if (
        typeof status === 'number' &&
        (status === 429 || status >= 500) &&
        !permanent &&
        attempt < delays.length
      ) {
        await sleep(delays[attempt]!, signal)
        continue
      }
      return result
    }
  }
}

function apiError(response: RawResponse, action: string): KubeApiError {
  let message = response.text.trim().slice(0, 2000)
  let reason = `HTTP${response.status}`
  try {
    const status = JSON.parse(response.text) as { message?: string; reason?: string }
    if (status.message) message = status.message
    if (status.reason) reason = status.reason
  } catch {}
  return new KubeApiError(response.status, reason, `${action}: ${message} (HTTP ${response.status})`)
}

/**
 * Turns a client failure into the AirgapError the user sees: E_AUTH when the credentials were refused, E_CLUSTER
 * otherwise, with `what` saying what was being done ("applying Deployment demo/web from manifests/apps/web.yaml").
 */
export function clusterError(error: unknown, what: string, server?: string): AirgapError {
  if (error instanceof AirgapError) return error
  if (error instanceof KubeApiError) {
    if (error.status === 401) {
      return new AirgapError('E_AUTH', `The cluster refused the kubeconfig's credentials while ${what}.`, {
        cause: error,
        hints: ['Check the user of the kubeconfig context (its token or certificate may have expired).'],
      })
    }
    if (error.status === 0) {
      return new AirgapError(
        'E_CLUSTER',
        `Cannot reach the Kubernetes API${server ? ` at ${server}` : ''} while ${what}: ${error.message}`,
        {
          cause: error,
          hints: ['Check that the cluster is up and that --kubeconfig/--context name it.'],
        },
      )
    }
    return new AirgapError(
      'E_CLUSTER',
      `The cluster refused ${what}: ${error.message.replace(/^[a-z ]+: /, '')}`,
      {
        cause: error,
        data: { status: error.status, reason: error.reason },
        hints:
          error.status === 403 ? ['The kubeconfig user lacks a permission; see the preflight report.'] : [],
      },
    )
  }
  const message = error instanceof Error ? error.message : String(error)
  return new AirgapError('E_CLUSTER', `Failed while ${what}: ${message}`, { cause: error })
}
