import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import * as https from 'node:https'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import * as k8s from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFromDefinition } from '../../../src/bundle/bundle-from-definition.js'
import { BundleReader } from '../../../src/bundle/reader.js'
import { AirgapError } from '../../../src/errors.js'
import type { EventSink, ProgressEvent } from '../../../src/events/types.js'
import { type InstallResult, installStages } from '../../../src/stages/install-stages.js'
import { readInstallState } from '../../../src/stages/install-status.js'
import { formatRef, type ObjectRef } from '../../../src/stages/objects.js'
import { uninstallStages } from '../../../src/stages/uninstall-stages.js'
import { createChart, helm } from '../../support/charts.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pushImage } from '../../support/images.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

/**
 * The install engine against a real control plane (kwok nodes make pods Ready and Jobs complete) and real bundles
 * built from stage folders written here: stage "base" (a CRD, a namespace, an "operator" Deployment and its
 * ConfigMap), stage "apps" (a Helm chart from the bundle, its replica count a site value), stage "jobs" (a Job and a
 * custom resource with a JSONPath readiness rule that only an "operator" — this test — can satisfy).
 */
describe('installStages against a real control plane', () => {
  let work: string
  let cp: ControlPlane
  let server: FileServer
  let registry: TestRegistry
  let kc: k8s.KubeConfig
  let objects: k8s.KubernetesObjectApi
  let custom: k8s.CustomObjectsApi
  let core: k8s.CoreV1Api
  let bundleV1: string
  let bundleV2: string
  let bundleStuck: string
  let bundleJobFails: string
  const helmBin = findTool('helm')
  const siteValues = { domain: 'astrago.site.example', workerReplicas: 2 }

  const write = (path: string, text: string) => {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
  }

  const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                domain: {type: string}
                size: {type: integer, default: 3}
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
`
  const operator = (withConfig: boolean) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: operator
  namespace: demo
spec:
  replicas: 1
  selector: {matchLabels: {app: operator}}
  template:
    metadata: {labels: {app: operator}}
    spec:
      containers:
        - name: operator
          image: docker.io/library/operator:1.0
${
  withConfig
    ? `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: operator-config
  namespace: demo
data:
  domain: "\${{ site.domain }}"
`
    : ''
}`

  async function buildBundle(name: string, version: string, stages: Record<string, string>): Promise<string> {
    const definition = join(work, `${name}-${version}.yaml`)
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name, version },
        charts: [{ name: 'worker', version: '0.1.0', repo: `${server.url}/charts`, discoverImages: false }],
        stages: Object.entries(stages).map(([stage, path]) => ({ name: stage, path })),
      }),
    )
    const result = await bundleFromDefinition({
      definition,
      outputDir: join(work, 'out'),
      mirrors: { 'docker.io': `${registry.url}/docker.io` },
      toolVersion: 'test',
      sink: { emit() {} },
    })
    return result.path
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-deploy-it-'))
    const [plane] = await Promise.all([
      startControlPlane(),
      (async () => {
        const charts = join(work, 'site', 'charts')
        mkdirSync(charts, { recursive: true })
        await createChart(charts, { name: 'worker', version: '0.1.0', images: ['quay.io/demo/worker:2.0'] })
        rmSync(join(charts, 'worker'), { recursive: true })
        await helm(['repo', 'index', charts], { home: join(work, 'helm-home') })
        server = await startFileServer(join(work, 'site'))
        // The images the stage manifests name (the bundle carries them): tiny synthetic ones.
        registry = await startRegistry()
        for (const name of ['operator', 'migrate', 'never'])
          await pushImage(registry, {
            repository: `docker.io/library/${name}`,
            tag: '1.0',
            layers: [{ seed: name, size: 1024 }],
          })
      })(),
    ])
    cp = plane
    kc = new k8s.KubeConfig()
    kc.loadFromFile(cp.kubeconfigPath)
    objects = k8s.KubernetesObjectApi.makeApiClient(kc)
    custom = kc.makeApiClient(k8s.CustomObjectsApi)
    core = kc.makeApiClient(k8s.CoreV1Api)

    // Stage folders, v1.
    const s = join(work, 'stages')
    write(join(s, 'base', 'namespace.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n')
    write(join(s, 'base', 'crd.yaml'), crd)
    write(join(s, 'base', 'operator.yaml'), operator(true))
    write(
      join(s, 'apps', 'stage.yaml'),
      `apiVersion: airgap.astrago.io/v1alpha1
kind: Stage
timeout: 2m
charts:
  - chart: worker
    version: 0.1.0
    release: worker
    namespace: apps
    valuesFiles: [worker-values.yaml]
    values:
      replicaCount: \${{ site.workerReplicas }}
values:
  schema:
    type: object
    required: [domain]
    properties:
      domain: {type: string, pattern: '^[a-z0-9.-]+$'}
      workerReplicas: {type: integer, minimum: 1, default: 1}
`,
    )
    write(
      join(s, 'apps', 'worker-values.yaml'),
      'podAnnotations:\n  site-domain: "$' + '{{ site.domain }}"\n',
    )
    write(
      join(s, 'jobs', 'stage.yaml'),
      `apiVersion: airgap.astrago.io/v1alpha1
kind: Stage
timeout: 2m
readiness:
  - apiVersion: example.com/v1
    kind: Widget
    name: w1
    namespace: demo
    jsonPath: '{.status.conditions[?(@.type=="Ready")].status}'
    equals: "True"
`,
    )
    write(
      join(s, 'jobs', 'job.yaml'),
      `apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: demo}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: docker.io/library/migrate:1.0}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: demo}
spec:
  domain: \${{ site.domain }}
`,
    )
    // v2: the operator's ConfigMap is gone.
    const s2 = join(work, 'stages-v2')
    write(join(s2, 'base', 'namespace.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n')
    write(join(s2, 'base', 'crd.yaml'), crd)
    write(join(s2, 'base', 'operator.yaml'), operator(false))
    // A stage that cannot become ready: no node has the label its pods need.
    write(
      join(work, 'stages-stuck', 'never', 'stage.yaml'),
      'apiVersion: airgap.astrago.io/v1alpha1\nkind: Stage\ntimeout: 4s\nnamespace: stuck\n',
    )
    write(
      join(work, 'stages-stuck', 'never', 'never.yaml'),
      `apiVersion: v1
kind: Namespace
metadata: {name: stuck}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: never}
spec:
  replicas: 1
  selector: {matchLabels: {app: never}}
  template:
    metadata: {labels: {app: never}}
    spec:
      nodeSelector: {disktype: none-has-this}
      containers: [{name: app, image: docker.io/library/never:1.0}]
`,
    )

    bundleV1 = await buildBundle('demo', '1.0.0', {
      base: './stages/base',
      apps: './stages/apps',
      jobs: './stages/jobs',
    })
    bundleV2 = await buildBundle('demo', '2.0.0', {
      base: './stages-v2/base',
      apps: './stages/apps',
      jobs: './stages/jobs',
    })
    // A Job that fails (its deadline passes while its pod cannot be scheduled), in a stage with a long timeout.
    write(
      join(work, 'stages-jobfail', 'migrate', 'job.yaml'),
      `apiVersion: v1
kind: Namespace
metadata: {name: jobfail}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: jobfail}
spec:
  activeDeadlineSeconds: 1
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {disktype: none-has-this}
      containers: [{name: migrate, image: docker.io/library/never:1.0}]
`,
    )
    bundleStuck = await buildBundle('stuck', '1.0.0', { never: './stages-stuck/never' })
    bundleJobFails = await buildBundle('jobfail', '1.0.0', { migrate: './stages-jobfail/migrate' })
  })

  afterAll(async () => {
    await server?.stop()
    await registry?.stop()
    await cp?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  /** Records every event; optionally reacts to them. */
  /** The object a task of `kind` (an apply or a wait) works on, written as its task titles write it. */
  function taskObject(event: ProgressEvent, kind: 'stage.object' | 'stage.wait'): string | undefined {
    if (event.type !== 'task.start' || event.kind !== kind) return undefined
    const { ref, rule } = event.data as { ref: ObjectRef; rule?: { jsonPath: string; equals?: string } }
    return rule ? `${formatRef(ref)}: ${rule.jsonPath} = ${rule.equals}` : formatRef(ref)
  }

  function recorder(react?: (event: ProgressEvent) => void): EventSink & { events: ProgressEvent[] } {
    const events: ProgressEvent[] = []
    return {
      events,
      emit(event) {
        events.push(event)
        react?.(event)
      },
    }
  }

  /** Plays the widget operator: once w1 exists, sets its Ready condition (through the status subresource). */
  function widgetOperator(): { stop: () => void } {
    let stopped = false
    const loop = async () => {
      while (!stopped) {
        try {
          await custom.patchNamespacedCustomObjectStatus(
            {
              group: 'example.com',
              version: 'v1',
              namespace: 'demo',
              plural: 'widgets',
              name: 'w1',
              body: { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Reconciled' }] } },
            },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          )
        } catch {}
        await new Promise((r) => setTimeout(r, 300))
      }
    }
    void loop()
    return { stop: () => (stopped = true) }
  }

  async function install(
    bundle: string,
    extra: Partial<Parameters<typeof installStages>[0]> = {},
  ): Promise<InstallResult> {
    const reader = await BundleReader.open(bundle)
    try {
      return await installStages({
        reader,
        kubeconfig: cp.kubeconfigPath,
        siteValues,
        helm: helmBin,
        sink: { emit() {} },
        ...extra,
      })
    } finally {
      await reader.close()
    }
  }

  const read = (apiVersion: string, kind: string, name: string, namespace?: string) =>
    objects
      .read({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } })
      .catch(() => undefined)

  /** GET a path of the API as plain JSON, with the admin kubeconfig's credentials. */
  async function rawGet(path: string): Promise<unknown> {
    const options: https.RequestOptions = {}
    await kc.applyToHTTPSOptions(options)
    return await new Promise((resolve, reject) => {
      https
        .get(new URL(path, cp.server), options, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))))
          res.on('error', reject)
        })
        .on('error', reject)
    })
  }

  const helmReleases = async () =>
    JSON.parse(
      (
        await helm(['list', '--all-namespaces', '--all', '-o', 'json', '--kubeconfig', cp.kubeconfigPath], {
          home: join(work, 'helm-home'),
        })
      ).stdout,
    ) as { name: string; namespace: string; revision: string; status: string }[]

  it('plans a dry run without a cluster, and names missing site values', async () => {
    const result = await install(bundleV1, {
      kubeconfig: join(work, 'no-such-kubeconfig'),
      dryRun: true,
      imageRegistry: 'registry.site.example:5000',
    })
    expect(result.mode).toBe('dry-run')
    const plan = result.plan!
    expect(plan.stages.map((s) => s.name)).toEqual(['base', 'apps', 'jobs'])
    expect(plan.stages[0]!.objects.map((o) => `${o.kind} ${o.name}`)).toEqual([
      'Namespace demo',
      'CustomResourceDefinition widgets.example.com',
      'ConfigMap operator-config',
      'Deployment operator',
    ])
    expect(plan.stages[0]!.images).toEqual(['registry.site.example:5000/docker.io/library/operator:1.0'])
    expect(plan.stages[1]!.charts).toEqual([
      {
        release: 'worker',
        namespace: 'apps',
        chart: 'worker',
        version: '0.1.0',
        valuesFrom: ['manifests/apps/worker-values.yaml', 'manifests/apps/stage.yaml charts[0].values'],
      },
    ])
    expect(plan.stages[2]!.readiness[0]).toMatchObject({
      object: { kind: 'Widget', name: 'w1' },
      equals: 'True',
    })
    expect(plan.values).toEqual(siteValues)

    const error = await install(bundleV1, { dryRun: true, siteValues: { workerReplicas: 0 } }).catch((e) => e)
    expect(error).toBeInstanceOf(AirgapError)
    expect(error.code).toBe('E_INPUT')
    expect(error.data.problems).toEqual([
      'domain: required (stage apps)',
      'workerReplicas: must be at least 1 (stage apps)',
    ])
  })

  it('refuses a user without permissions in preflight, listing what is missing', async () => {
    await core.createNamespacedServiceAccount({
      namespace: 'default',
      body: { metadata: { name: 'nobody' } },
    })
    const token = await core.createNamespacedServiceAccountToken({
      namespace: 'default',
      name: 'nobody',
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    })
    const config = JSON.parse(kc.exportConfig())
    config.users = [{ name: 'nobody', user: { token: token.status?.token } }]
    config.contexts[0].context.user = 'nobody'
    const kubeconfig = join(work, 'nobody.kubeconfig')
    writeFileSync(kubeconfig, JSON.stringify(config))

    const error = await install(bundleV1, { kubeconfig }).catch((e) => e)
    expect(error).toBeInstanceOf(AirgapError)
    expect(error.code).toBe('E_CLUSTER')
    expect(error.message).toContain(
      'cannot create customresourcedefinitions.apiextensions.k8s.io (cluster-wide)',
    )
    expect(error.message).toContain('cannot patch deployments.apps in namespace demo')
    expect(error.message).toContain('cannot create secrets in namespace apps')
    expect(error.data.serverVersion).toBe(cp.version)
  })

  it('stops in stage 2 when interrupted, and resumes there without applying stage 1 again', async () => {
    const controller = new AbortController()
    const seen: string[] = []
    const sink = recorder((e) => {
      if (e.type === 'task.start') seen.push(e.title)
      if (taskObject(e, 'stage.wait') === 'Deployment apps/worker') controller.abort()
    })
    const error = await install(bundleV1, { sink, signal: controller.signal }).catch((e) => e)
    expect(error).toBeInstanceOf(AirgapError)
    expect(error.code, `${error.message}\n${seen.join('\n')}`).toBe('E_INTERRUPTED')
    expect(error.message).toContain('stage apps')

    const stopped = await readInstallState({ kubeconfig: cp.kubeconfigPath })
    expect(stopped?.status).toBe('installing')
    expect(stopped?.stages.map((s) => [s.name, s.status])).toEqual([
      ['base', 'ready'],
      ['apps', 'applying'],
      ['jobs', 'pending'],
    ])
    expect(stopped?.stages[0]?.objects).toEqual([
      { apiVersion: 'v1', kind: 'Namespace', name: 'demo' },
      {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        name: 'widgets.example.com',
      },
      { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'demo', name: 'operator-config' },
      { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'demo', name: 'operator' },
    ])
    // The CRD went through server-side apply as plain JSON: its schema kept default and preserve-unknown-fields
    // (read raw: the client library's typed models would hide both).
    const storedCrd = (await rawGet(
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com',
    )) as CrdView
    const schema = storedCrd.spec.versions[0]!.schema.openAPIV3Schema.properties
    expect(schema.spec?.properties.size?.default).toBe(3)
    expect(schema.status?.['x-kubernetes-preserve-unknown-fields']).toBe(true)

    // Someone scales the operator by hand: re-applying stage 1 would set it back to 1 replica.
    await objects.patch(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'operator', namespace: 'demo' },
        spec: { replicas: 2 },
      },
      undefined,
      undefined,
      'someone-else',
      undefined,
      k8s.PatchStrategy.MergePatch,
    )
    const crdVersion = storedCrd.metadata.resourceVersion

    const operatorLoop = widgetOperator()
    const events = recorder()
    let result: InstallResult
    try {
      result = await install(bundleV1, { sink: events })
    } finally {
      operatorLoop.stop()
    }
    console.log(`resumed install (stage 1 checked, stages 2-3 applied) took ${result.durationMs} ms`)
    expect(result.mode).toBe('resume')
    expect(result.stages.map((s) => [s.name, s.action])).toEqual([
      ['base', 'checked'],
      ['apps', 'applied'],
      ['jobs', 'applied'],
    ])
    const applied = events.events.flatMap((e) => taskObject(e, 'stage.object') ?? [])
    expect(applied.sort()).toEqual(['Job demo/migrate', 'Namespace apps', 'Widget demo/w1'])
    expect(events.events.flatMap((e) => taskObject(e, 'stage.wait') ?? [])).toContain(
      'Widget demo/w1: {.status.conditions[?(@.type=="Ready")].status} = True',
    )

    const deployment = (await read('apps/v1', 'Deployment', 'operator', 'demo')) as k8s.V1Deployment
    expect(deployment.spec?.replicas).toBe(2)
    expect(deployment.status?.availableReplicas).toBe(2)
    expect(
      (await read('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'widgets.example.com'))?.metadata
        ?.resourceVersion,
    ).toBe(crdVersion)

    // Every readiness wait passed: the chart's Deployment with the site's replica count, the Job, the widget.
    const worker = (await read('apps/v1', 'Deployment', 'worker', 'apps')) as k8s.V1Deployment
    expect(worker.spec?.replicas).toBe(2)
    expect(worker.status?.availableReplicas).toBe(2)
    expect(worker.spec?.template.metadata?.annotations).toEqual({ 'site-domain': 'astrago.site.example' })
    const job = (await read('batch/v1', 'Job', 'migrate', 'demo')) as k8s.V1Job
    expect(job.status?.conditions?.find((c) => c.type === 'Complete')?.status).toBe('True')
    const widget = (await read('example.com/v1', 'Widget', 'w1', 'demo')) as { spec?: unknown } | undefined
    expect(widget?.spec).toEqual({ domain: 'astrago.site.example', size: 3 })
    expect(await helmReleases()).toEqual([
      expect.objectContaining({ name: 'worker', namespace: 'apps', revision: '2', status: 'deployed' }),
    ])

    const state = await readInstallState({ kubeconfig: cp.kubeconfigPath })
    expect(state?.status).toBe('installed')
    expect(state?.bundle).toMatchObject({ name: 'demo', version: '1.0.0' })
    expect(state?.bundle.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(state?.stages.every((s) => s.status === 'ready' && s.startedAt && s.endedAt)).toBe(true)
    expect(state?.stages[1]?.releases).toEqual([
      { name: 'worker', namespace: 'apps', chart: 'worker', version: '0.1.0' },
    ])
  })

  it('changes nothing when the same bundle is installed again', async () => {
    const stateBefore = (await read('v1', 'ConfigMap', 'astrago-airgap-state', 'astrago-airgap'))?.metadata
      ?.resourceVersion
    const events = recorder()
    const result = await install(bundleV1, { sink: events })
    console.log(`unchanged rerun took ${result.durationMs} ms`)
    expect(result.mode).toBe('unchanged')
    expect(result.nothingToDo).toBe(true)
    expect(result.stages.every((s) => s.action === 'checked')).toBe(true)
    expect(
      events.events.some(
        (e) => e.type === 'task.start' && (e.kind === 'stage.object' || e.kind === 'stage.release'),
      ),
    ).toBe(false)
    expect(events.events).toContainEqual(expect.objectContaining({ type: 'log', code: 'I_NOTHING_TO_DO' }))
    expect(
      (await read('v1', 'ConfigMap', 'astrago-airgap-state', 'astrago-airgap'))?.metadata?.resourceVersion,
    ).toBe(stateBefore)
    expect((await helmReleases())[0]?.revision).toBe('2')
  })

  it('upgrades to a bundle v2 and prunes the object v2 no longer ships', async () => {
    expect(await read('v1', 'ConfigMap', 'operator-config', 'demo')).toBeDefined()
    const operatorLoop = widgetOperator()
    let result: InstallResult
    try {
      result = await install(bundleV2)
    } finally {
      operatorLoop.stop()
    }
    console.log(`upgrade to v2 with prune took ${result.durationMs} ms`)
    expect(result.mode).toBe('upgrade')
    expect(result.stages.every((s) => s.action === 'applied')).toBe(true)
    expect(result.pruned).toEqual({
      objects: [{ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'demo', name: 'operator-config' }],
      releases: [],
    })
    expect(await read('v1', 'ConfigMap', 'operator-config', 'demo')).toBeUndefined()
    // Everything else is still there; stage 1 was applied again (the hand-made scale-up is undone).
    const deployment = (await read('apps/v1', 'Deployment', 'operator', 'demo')) as k8s.V1Deployment
    expect(deployment.spec?.replicas).toBe(1)
    expect(await read('example.com/v1', 'Widget', 'w1', 'demo')).toBeDefined()
    const state = await readInstallState({ kubeconfig: cp.kubeconfigPath })
    expect(state?.bundle.version).toBe('2.0.0')
    expect(state?.status).toBe('installed')
    expect(state?.prune).toEqual({ objects: [], releases: [] })
  })

  it('uninstalls every stage and leaves no object of the bundle behind', async () => {
    const result = await uninstallStages({
      kubeconfig: cp.kubeconfigPath,
      helm: helmBin,
      sink: { emit() {} },
    })
    console.log(`uninstall took ${result.durationMs} ms`)
    expect(result.nothingToDo).toBe(false)
    expect(result.bundle?.version).toBe('2.0.0')
    expect(result.removed.releases).toEqual([
      { name: 'worker', namespace: 'apps', chart: 'worker', version: '0.1.0' },
    ])
    for (const [apiVersion, kind, name, namespace] of [
      ['v1', 'Namespace', 'demo'],
      ['v1', 'Namespace', 'apps'],
      ['apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'widgets.example.com'],
      ['apps/v1', 'Deployment', 'operator', 'demo'],
      ['apps/v1', 'Deployment', 'worker', 'apps'],
      ['batch/v1', 'Job', 'migrate', 'demo'],
      ['v1', 'ConfigMap', 'astrago-airgap-state', 'astrago-airgap'],
      ['v1', 'Namespace', 'astrago-airgap'],
    ] as const)
      expect(await read(apiVersion, kind, name, namespace), `${kind} ${name}`).toBeUndefined()
    expect(await helmReleases()).toEqual([])
    expect(await readInstallState({ kubeconfig: cp.kubeconfigPath })).toBeUndefined()

    const again = await uninstallStages({ kubeconfig: cp.kubeconfigPath, helm: helmBin, sink: { emit() {} } })
    expect(again.nothingToDo).toBe(true)
  })

  it('fails a stage that does not become ready in time with E_CLUSTER naming the object, its conditions and events', async () => {
    const namespace = 'astrago-airgap-stuck'
    const started = Date.now()
    const error = await install(bundleStuck, { namespace, skipPreflight: true }).catch((e) => e)
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(error).toBeInstanceOf(AirgapError)
    expect(error.code).toBe('E_CLUSTER')
    console.log(`the timeout error, as the user sees it:\n${error.message}`)
    expect(error.message).toContain(
      'Stage never: Deployment stuck/never did not become ready within the stage timeout (4s)',
    )
    expect(error.message).toMatch(/Available=False \(MinimumReplicasUnavailable/)
    expect(error.message).toMatch(/ScalingReplicaSet: Scaled up replica set never-/)
    expect(error.data.object).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: 'stuck',
      name: 'never',
    })
    expect(error.data.conditions.map((c: { type: string }) => c.type).sort()).toEqual([
      'Available',
      'Progressing',
    ])
    expect(error.data.events.length).toBeGreaterThan(0)
    // The pod that cannot be scheduled, with the scheduler's event.
    expect(error.data.pods[0].events.map((e: { reason: string }) => e.reason)).toContain('FailedScheduling')
    expect(error.message).toContain('FailedScheduling')

    const state = await readInstallState({ kubeconfig: cp.kubeconfigPath, namespace })
    expect(state?.status).toBe('failed')
    expect(state?.stages[0]).toMatchObject({ name: 'never', status: 'failed' })
    expect(state?.stages[0]?.error).toContain('did not become ready')
  })

  it('fails at once when a Job fails, without waiting for the stage timeout', async () => {
    const started = Date.now()
    const error = await install(bundleJobFails, {
      namespace: 'astrago-airgap-jobfail',
      skipPreflight: true,
    }).catch((e) => e)
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(error).toBeInstanceOf(AirgapError)
    expect(error.code, error.message).toBe('E_CLUSTER')
    expect(error.message).toContain('Stage migrate: Job jobfail/migrate failed.')
    expect(error.message).toMatch(/Failed=True \(DeadlineExceeded/)
    expect(error.data.reason).toMatch(/^the Job failed \(DeadlineExceeded/)
  })
})

/** The parts of a stored CRD the test looks at. */
interface CrdView {
  metadata: { resourceVersion: string }
  spec: {
    versions: {
      schema: {
        openAPIV3Schema: {
          properties: Record<
            string,
            { properties: Record<string, { default?: unknown }> } & Record<string, unknown>
          >
        }
      }
    }[]
  }
}
