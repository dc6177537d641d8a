// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ site.x }} is the site value syntax under test
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import type { BundleMetadata, LockedChart } from '../../src/bundle/metadata.js'
import { AirgapError } from '../../src/errors.js'
import { siteBuiltins, withSiteBuiltins } from '../../src/install/site-builtins.js'
import { fillGeneratedValues } from '../../src/stages/generated-values.js'
import { loadStagesFrom } from '../../src/stages/init-site.js'
import {
  globToRegExp,
  loadStages,
  parseDuration,
  parseStage,
  type StageSource,
} from '../../src/stages/load-stages.js'
import { planStages } from '../../src/stages/plan-stages.js'
import { readSiteValuesFile } from '../../src/stages/site-values.js'

const charts: LockedChart[] = [
  {
    name: 'worker',
    version: '0.1.0',
    repo: 'https://charts.example.org',
    sha256: 'x',
    path: 'charts/worker-0.1.0.tgz',
    oci: { repository: 'charts/worker', tag: '0.1.0', digest: 'sha256:x' },
    images: ['quay.io/demo/worker:2.0'],
  },
]

/** An in-memory bundle: stage name → { relative path → text or bytes }. */
function source(stages: Record<string, Record<string, string | Buffer>>): StageSource {
  const members = new Map<string, string | Buffer>()
  for (const [stage, files] of Object.entries(stages))
    for (const [relative, text] of Object.entries(files)) members.set(`manifests/${stage}/${relative}`, text)
  const metadata = {
    name: 'demo',
    version: '1.0.0',
    charts,
    stages: Object.entries(stages).map(([name, files]) => ({
      name,
      files: Object.keys(files).map((f) => `manifests/${name}/${f}`),
    })),
  } as unknown as BundleMetadata
  return {
    metadata,
    read: async (path) => {
      const text = members.get(path)
      if (text === undefined) throw new Error(`no member ${path}`)
      return Buffer.from(text)
    },
  }
}

async function problemsOf(stages: Record<string, Record<string, string | Buffer>>): Promise<string[]> {
  try {
    await loadStages(source(stages))
  } catch (error) {
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_INPUT')
    return (error as AirgapError).data?.problems as string[]
  }
  return []
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  template: {spec: {containers: [{name: app, image: "nginx:1.27"}]}}
`

describe('loading stages', () => {
  it('reads manifests (several documents, Lists) in file order, and the stage file with charts and rules', async () => {
    const [base, apps] = await loadStages(
      source({
        base: {
          'b.yaml':
            'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: three}\n',
          'a.yml':
            'apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: Secret, metadata: {name: one}}\n',
          'README.md': '# not a manifest',
        },
        apps: {
          'stage.yaml': `apiVersion: airgap.astrago.io/v1alpha1
kind: Stage
timeout: 1h30m
namespace: apps
charts:
  - chart: worker
    valuesFiles: [worker.yaml]
    values: {replicaCount: 2}
readiness:
  - {apiVersion: example.com/v1, kind: Widget, name: w1, condition: Ready}
values:
  schema: {type: object, properties: {domain: {type: string}}}
`,
          'worker.yaml': 'image: {tag: "2.0"}\n',
          'web.yaml': deployment,
        },
      }),
    )
    expect(base!.documents.map((d) => [d.source, d.object.kind])).toEqual([
      ['manifests/base/a.yml items[0]', 'Secret'],
      ['manifests/base/b.yaml (document 1)', 'ConfigMap'],
      ['manifests/base/b.yaml (document 3)', 'ConfigMap'],
    ])
    expect(base!.timeoutMs).toBe(600_000)
    expect(base!.stageFile).toBeUndefined()
    expect(apps!.stageFile).toBe('manifests/apps/stage.yaml')
    expect(apps!.timeoutMs).toBe(5_400_000)
    expect(apps!.documents.map((d) => d.source)).toEqual(['manifests/apps/web.yaml'])
    expect(apps!.charts).toEqual([
      {
        chart: 'worker',
        version: '0.1.0',
        member: 'charts/worker-0.1.0.tgz',
        release: 'worker',
        namespace: 'apps',
        valuesFiles: [{ member: 'manifests/apps/worker.yaml', values: { image: { tag: '2.0' } } }],
        values: { replicaCount: 2 },
        images: ['quay.io/demo/worker:2.0'],
        source: 'manifests/apps/stage.yaml charts[0]',
      },
    ])
    expect(apps!.readiness).toEqual([
      {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        name: 'w1',
        jsonPath: '{.status.conditions[?(@.type=="Ready")].status}',
        equals: 'True',
        source: 'manifests/apps/stage.yaml readiness[0]',
      },
    ])
    expect(apps!.schema).toEqual({ type: 'object', properties: { domain: { type: 'string' } } })
  })

  it('names the member and the field of every problem', async () => {
    expect(
      await problemsOf({
        s: {
          'stage.yaml': `apiVersion: airgap.astrago.io/v1alpha1
kind: Stage
timeot: 5m
timeout: soon
charts:
  - chart: wroker
  - chart: worker
    valuesFiles: [missing.yaml, ../escape.yaml]
readiness:
  - {apiVersion: v1, kind: Pod, name: p, jsonPath: '{.status..phase}'}
  - {kind: Pod, jsonPath: '{.status.phase}'}
values:
  schema: {type: object, properties: {a: {type: strin}}}
`,
          'bad.yaml':
            'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: ConfigMap\nmetadata: {name: x}\n',
          'broken.yaml': 'a: [\n',
          'gen.yaml': 'apiVersion: v1\nkind: Pod\nmetadata: {generateName: p-}\n',
        },
      }),
    ).toEqual([
      'manifests/s/stage.yaml timeot: unknown field (did you mean "timeout"?); expected one of apiVersion, kind, timeout, namespace, enabled, charts, configMaps, readiness, values',
      'manifests/s/stage.yaml timeout: expected a duration such as 90s, 10m or 1h30m',
      'manifests/s/stage.yaml charts[0].chart: the bundle has no chart wroker (did you mean worker?); it has: worker 0.1.0',
      'manifests/s/stage.yaml charts[1].namespace: required: the namespace to install the release into (or a stage namespace)',
      'manifests/s/stage.yaml readiness[0].jsonPath: invalid JSONPath "{.status..phase}" at character 10: expected a field name after "."',
      'manifests/s/stage.yaml readiness[1].apiVersion: required',
      'manifests/s/stage.yaml readiness[1].name: required',
      'manifests/s/stage.yaml values.schema.properties.a.type: expected one of object, array, string, integer, number, boolean',
      'manifests/s/bad.yaml (document 2): apiVersion: required',
      expect.stringMatching(/^manifests\/s\/broken\.yaml: not valid YAML: /),
      'manifests/s/gen.yaml: metadata.name: required (generateName cannot be applied idempotently)',
    ])
    expect(
      await problemsOf({
        s: {
          'stage.yaml':
            'apiVersion: airgap.astrago.io/v1alpha1\nkind: Stage\nnamespace: apps\ncharts:\n  - {chart: worker, valuesFiles: [missing.yaml, ../x.yaml]}\n',
        },
      }),
    ).toEqual([
      'manifests/s/stage.yaml charts[0].valuesFiles[0]: manifests/s/missing.yaml is not in the bundle (values files are .yaml files next to stage.yaml)',
      'manifests/s/stage.yaml charts[0].valuesFiles[1]: expected a file name relative to the stage folder',
    ])
  })

  it('parses durations', () => {
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('10m')).toBe(600_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration(30)).toBe(30_000)
    for (const bad of ['', '10', '1d', 'm', '0s', -1, null])
      expect(parseDuration(bad), String(bad)).toBeUndefined()
  })
})

describe('planning stages', () => {
  const stage = (files: Record<string, string>, name = 's') => {
    const problems: string[] = []
    const parsed = parseStage(
      name,
      new Map(Object.entries(files).map(([k, v]) => [`manifests/${name}/${k}`, v])),
      charts,
      problems,
    )
    expect(problems).toEqual([])
    return parsed
  }

  it('substitutes site values, fills namespaces by scope, relocates images and orders objects', () => {
    const s = stage({
      'stage.yaml':
        'apiVersion: airgap.astrago.io/v1alpha1\nkind: Stage\nnamespace: apps\ncharts: [{chart: worker, values: {host: "${{ site.domain }}"}}]\nvalues:\n  schema: {type: object, required: [domain], properties: {domain: {type: string}, replicas: {type: integer, default: 2}}}\n',
      'all.yaml': `${deployment.replace('replicas: 1', 'replicas: "${{ site.replicas }}"')}---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: clusterwidgets.example.com}
spec: {group: example.com, scope: Cluster, names: {kind: ClusterWidget, plural: clusterwidgets}}
---
apiVersion: example.com/v1
kind: ClusterWidget
metadata: {name: cw}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: elsewhere, namespace: other}
data: {url: "https://\${{ site.domain }}/"}
`,
    })
    const plan = planStages([s], { domain: 'site.example' }, { imageRegistry: 'harbor.site' })
    const [planned] = plan.stages
    expect(
      planned!.objects.map((o) => [o.object.kind, o.object.metadata.name, o.object.metadata.namespace]),
    ).toEqual([
      ['Namespace', 'apps', undefined],
      ['CustomResourceDefinition', 'clusterwidgets.example.com', undefined],
      ['ConfigMap', 'elsewhere', 'other'],
      ['ClusterRole', 'reader', undefined],
      ['Deployment', 'web', 'apps'],
      ['ClusterWidget', 'cw', undefined],
    ])
    const web = planned!.objects.find((o) => o.object.kind === 'Deployment')!.object as unknown as {
      spec: { replicas: number; template: { spec: { containers: { image: string }[] } } }
    }
    expect(web.spec.replicas).toBe(2)
    expect(web.spec.template.spec.containers[0]?.image).toBe('harbor.site/docker.io/library/nginx:1.27')
    expect(planned!.objects.find((o) => o.object.kind === 'ConfigMap')!.object.data).toEqual({
      url: 'https://site.example/',
    })
    expect(planned!.charts[0]!.values).toEqual([
      { source: 'manifests/s/stage.yaml charts[0].values', values: { host: 'site.example' } },
    ])
    expect(planned!.images).toEqual(['harbor.site/docker.io/library/nginx:1.27', 'quay.io/demo/worker:2.0'])
    expect(plan.values).toEqual({ domain: 'site.example', replicas: 2 })
  })

  it('changes the values digest with what the values make of the stages and the image registry, nothing else', () => {
    const s = stage({
      'a.yaml': deployment.replace('replicas: 1', 'replicas: ${{ site.a }}'),
    })
    const digest = (values: Record<string, unknown>, imageRegistry?: string) =>
      planStages([s], values, { imageRegistry }).valuesDigest
    expect(digest({ a: 1, b: { c: 2, d: 3 } })).toBe(digest({ b: { d: 3, c: 2 }, a: 1 }))
    expect(digest({ a: 1 })).not.toBe(digest({ a: 2 }))
    expect(digest({ a: 1 })).not.toBe(digest({ a: 1 }, 'harbor.site'))
    // A value no stage refers to (the site server's address when nothing uses it) changes nothing.
    expect(digest({ a: 1, airgap: { server: 'https://a:8443' } })).toBe(
      digest({ a: 1, airgap: { server: 'https://b:8443' } }),
    )
  })

  it('refuses an object applied by two stage files, and unset values, naming where', () => {
    const one = stage({ 'a.yaml': deployment }, 'one')
    const two = stage(
      {
        'b.yaml': `${deployment}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {x: "\${{ site.nope }}"}\n`,
      },
      'two',
    )
    const error = (() => {
      try {
        planStages([one, two], {})
      } catch (e) {
        return e as AirgapError
      }
    })()
    expect(error?.code).toBe('E_INPUT')
    expect(error?.data?.problems).toEqual([
      'manifests/two/b.yaml (document 1): Deployment default/web is also in manifests/one/a.yaml; an object can be applied by one stage file only',
      'manifests/two/b.yaml (document 2) data.x: site.nope is not set; add it to the site values file',
    ])
  })
})

describe('ConfigMaps from files (configMaps: in stage.yaml)', () => {
  const stageFile = (configMaps: string, extra = '') =>
    `apiVersion: airgap.astrago.io/v1alpha1\nkind: Stage\nnamespace: apps\n${extra}configMaps:\n${configMaps}`
  const planOne = async (files: Record<string, string | Buffer>, values: Record<string, unknown> = {}) => {
    const stages = await loadStages(source({ s: files }))
    return { stages, plan: planStages(stages, values) }
  }

  it('makes one ConfigMap per entry: file names as keys, binaryData for bytes, the files not applied as manifests', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0xfe])
    const { stages, plan } = await planOne({
      'stage.yaml': stageFile(`  - name: dashboards
    labels: {grafana_dashboard: "1"}
    annotations: {grafana_folder: Astrago}
    files: [dashboards/*.json, extra/**]
  - name: settings
    namespace: other
    files: [app.yaml]
`),
      'dashboards/gpu.json': '{"title": "GPU ${{ not.a.site.value }}", "expr": "${datasource}"}\n',
      'dashboards/nodes.json': '{"title": "Nodes"}\n',
      'extra/deep/logo.png': png,
      'extra/theme.properties': 'parent=keycloak\n',
      'app.yaml': 'apiVersion: v1\nkind: Secret\nmetadata: {name: not-applied}\n',
      'web.yaml': deployment,
    })
    expect(stages[0]!.documents.map((d) => d.source)).toEqual([
      'manifests/s/stage.yaml configMaps[0]',
      'manifests/s/stage.yaml configMaps[1]',
      'manifests/s/web.yaml',
    ])
    const [dashboards, settings] = plan.stages[0]!.objects.filter((o) => o.object.kind === 'ConfigMap')
    expect(dashboards!.object).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'dashboards',
        namespace: 'apps',
        labels: { grafana_dashboard: '1' },
        annotations: { grafana_folder: 'Astrago' },
      },
      // Without substitute: true the text is kept exactly, ${{ included.
      data: {
        'gpu.json': '{"title": "GPU ${{ not.a.site.value }}", "expr": "${datasource}"}\n',
        'nodes.json': '{"title": "Nodes"}\n',
        'theme.properties': 'parent=keycloak\n',
      },
      binaryData: { 'logo.png': png.toString('base64') },
    })
    expect(settings!.object).toMatchObject({
      metadata: { name: 'settings', namespace: 'other' },
      data: { 'app.yaml': 'apiVersion: v1\nkind: Secret\nmetadata: {name: not-applied}\n' },
    })
    expect(plan.stages[0]!.objects.map((o) => o.object.metadata.name)).not.toContain('not-applied')
  })

  it('substitutes site values in the text with substitute: true, naming the file when one is missing', async () => {
    const files = {
      'stage.yaml': stageFile(
        '  - {name: realm, files: [realm.json, port.txt], substitute: true}\n',
        'values:\n  schema: {type: object, properties: {host: {type: string}, port: {type: integer, default: 30080}}}\n',
      ),
      'realm.json':
        '{"url": "http://${{ site.host }}:${{ site.port }}/*", "secret": "${SECRET}", "lit": "$${{ x }}"}',
      'port.txt': '${{ site.port }}',
    }
    const { plan } = await planOne(files, { host: 'astrago.site' })
    expect(plan.stages[0]!.objects[0]!.object.data).toEqual({
      'realm.json': '{"url": "http://astrago.site:30080/*", "secret": "${SECRET}", "lit": "${{ x }}"}',
      'port.txt': '30080',
    })
    const error = await planOne(files, {}).catch((e: AirgapError) => e)
    expect((error as AirgapError).data?.problems).toEqual([
      'manifests/s/realm.json: site.host is not set; add it to the site values file',
    ])
  })

  it('names the stage file and field of every problem', async () => {
    expect(
      await problemsOf({
        s: {
          'stage.yaml': stageFile(`  - name: Bad_Name
    files: [a.json]
    substitue: true
  - name: none
    files: [nothing/*.json, /etc/passwd]
  - name: clash
    files: [a.json, sub/a.json]
    labels: {n: 1}
  - name: big
    files: [big.txt]
  - name: dup
    files: [a.json]
  - name: dup
    files: [sub/a.json]
`),
          'a.json': '{}',
          'sub/a.json': '{}',
          'big.txt': 'x'.repeat((1 << 20) + 1),
        },
      }),
    ).toEqual([
      'manifests/s/stage.yaml configMaps[0].substitue: unknown field (did you mean "substitute"?); expected one of name, namespace, labels, annotations, files, substitute',
      'manifests/s/stage.yaml configMaps[0].name: required: a ConfigMap name (lowercase letters, digits, - and .)',
      'manifests/s/stage.yaml configMaps[1].files[0]: nothing/*.json matches no file in manifests/s/',
      'manifests/s/stage.yaml configMaps[1].files[1]: expected a file name or glob relative to the stage folder (*, ** and ? match)',
      'manifests/s/stage.yaml configMaps[2].labels: expected a mapping of names to text (quote values such as "1")',
      'manifests/s/stage.yaml configMaps[2].files[1]: manifests/s/sub/a.json and manifests/s/a.json would both be the key a.json',
      'manifests/s/stage.yaml configMaps[3].files: the ConfigMap would hold 1048584 bytes, more than the 1048576 bytes (1 MiB) a ConfigMap can hold; split it',
      'manifests/s/stage.yaml configMaps[5].name: ConfigMap dup is also made by configMaps[4]',
    ])
  })

  it('matches globs within folders (*, ?) and across them (**)', () => {
    expect(globToRegExp('dashboards/*.json').test('dashboards/gpu.json')).toBe(true)
    expect(globToRegExp('dashboards/*.json').test('dashboards/a/gpu.json')).toBe(false)
    expect(globToRegExp('theme/**').test('theme/login/resources/css/a.css')).toBe(true)
    expect(globToRegExp('**/*.css').test('a.css')).toBe(true)
    expect(globToRegExp('**/*.css').test('x/y/a.css')).toBe(true)
    expect(globToRegExp('a?.txt').test('ab.txt')).toBe(true)
    expect(globToRegExp('a.txt').test('abtxt')).toBe(false)
  })
})

describe('the Astrago stages (manifests/astrago)', () => {
  const plan = async () => {
    const { stages } = await loadStagesFrom('bundles/astrago.yaml')
    // What install adds to the site values while it serves the bundle (site.airgap.…, used by the gpu stage).
    const site = withSiteBuiltins(
      await readSiteValuesFile('scripts/demo-data/astrago-site.yaml'),
      siteBuiltins({ server: 'https://192.0.2.1:8443', caPem: 'CA', repositories: [] }),
    )
    const filled = await fillGeneratedValues({ stages, siteValues: site, namespace: 'astrago-airgap' })
    return { plan: planStages(stages, filled.values), values: filled.values }
  }
  // The merged values of a stage's first chart, and a container env list as name → value.
  const chartValues = (p: Awaited<ReturnType<typeof plan>>['plan'], stage: string) =>
    Object.assign({}, ...p.stages.find((s) => s.name === stage)!.charts[0]!.values.map((v) => v.values))
  const envOf = (component: { env: { name: string; value: string }[] }) =>
    Object.fromEntries(component.env.map((e) => [e.name, e.value]))
  const find = (p: Awaited<ReturnType<typeof plan>>['plan'], stage: string, name: string) =>
    p.stages.find((s) => s.name === stage)!.objects.find((o) => o.object.metadata.name === name)!
      .object as Record<
      string,
      // biome-ignore lint/suspicious/noExplicitAny: test access to nested manifest fields
      any
    >

  it('ships its Grafana dashboards as sidecar ConfigMaps and downloads nothing from grafana.com', async () => {
    const { plan: p } = await plan()
    const monitoring = p.stages.find((s) => s.name === 'monitoring')!
    const dashboards = monitoring.objects.filter((o) => o.object.metadata.labels?.grafana_dashboard === '1')
    expect(dashboards.map((d) => d.object.metadata.name).sort()).toEqual([
      'astrago-dashboard-cluster',
      'astrago-dashboard-gpu',
      'astrago-dashboard-workloads',
    ])
    for (const d of dashboards) {
      for (const text of Object.values(d.object.data as Record<string, string>)) {
        const dashboard = JSON.parse(text)
        expect(dashboard.uid).toMatch(/^astrago-/)
        expect(dashboard.panels.length).toBeGreaterThan(5)
        for (const panel of dashboard.panels.filter((x: { type: string }) => x.type !== 'row'))
          expect(panel.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' })
      }
    }
    expect(
      JSON.parse(find(p, 'monitoring', 'astrago-dashboard-gpu').data['astrago-gpu.json']).panels.map(
        (x: { targets?: { expr: string }[] }) => x.targets?.[0]?.expr ?? '',
      ),
    ).toEqual(expect.arrayContaining([expect.stringContaining('DCGM_FI_DEV_GPU_UTIL')]))
    const values = Object.assign({}, ...monitoring.charts[0]!.values.map((v) => v.values))
    const text = JSON.stringify(values)
    expect(text).not.toMatch(/gnetId|grafana\.com|"url"/)
    expect(values.grafana).toMatchObject({
      plugins: [],
      dashboards: {},
      dashboardProviders: {},
      defaultDashboardsEnabled: true,
      sidecar: {
        dashboards: { enabled: true, label: 'grafana_dashboard', labelValue: '1' },
        datasources: { uid: 'prometheus' },
      },
    })
  })

  it("waits for the ClusterPolicy to be ready and points it at Astrago's DCGM, MIG and sharing ConfigMaps", async () => {
    const { plan: p } = await plan()
    const gpu = p.stages.find((s) => s.name === 'gpu')!
    expect(gpu.readiness).toEqual([
      expect.objectContaining({
        apiVersion: 'nvidia.com/v1',
        kind: 'ClusterPolicy',
        name: 'cluster-policy',
        jsonPath: '{.status.state}',
        equals: 'ready',
      }),
    ])
    const values = Object.assign({}, ...gpu.charts[0]!.values.map((v) => v.values))
    expect(values.dcgmExporter.config.name).toBe('metrics-config')
    expect(values.migManager.config).toEqual({ name: 'custom-mig-parted-config', default: 'all-disabled' })
    expect(values.devicePlugin.config).toEqual({ name: 'nvidia-plugin-config-mps' })
    const metrics = find(p, 'gpu', 'metrics-config').data['dcgm-metrics.csv'] as string
    const rows = metrics.split('\n').filter((l) => l.trim() && !l.startsWith('#'))
    for (const row of rows) expect(row.split(',').map((f) => f.trim())[1]).toMatch(/^(gauge|counter)$/)
    expect(rows.map((r) => r.split(',')[0])).toEqual(
      expect.arrayContaining(['DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_FB_USED', 'DCGM_FI_DEV_POWER_USAGE']),
    )
    const mig = parseYaml(find(p, 'gpu', 'custom-mig-parted-config').data['config.yaml'])
    expect(mig.version).toBe('v1')
    expect(Object.keys(mig['mig-configs'])).toContain('all-disabled')
    const sharing = find(p, 'gpu', 'nvidia-plugin-config-mps').data
    expect(Object.keys(sharing)).toContain('mps_2')
    expect(parseYaml(sharing.mps_2).sharing.mps.resources[0]).toMatchObject({
      name: 'nvidia.com/gpu',
      replicas: 2,
    })
    for (const name of ['metrics-config', 'custom-mig-parted-config', 'nvidia-plugin-config-mps'])
      expect(find(p, 'gpu', name).metadata.annotations['astrago.io/defaults']).toMatch(/to be tuned/)
  })

  it('imports the Astrago realm with its login theme, and gives Keycloak and Astrago the same client secret', async () => {
    const { plan: p, values } = await plan()
    const keycloak = values.keycloak as { realm: string; clientId: string; clientSecret: string }
    const realm = JSON.parse(find(p, 'auth', 'keycloak-astrago-realm').data['astrago-realm.json'])
    expect(realm).toMatchObject({ realm: 'astrago', loginTheme: 'astrago', enabled: true })
    expect(realm.clients[0]).toMatchObject({
      clientId: 'astrago-client',
      publicClient: false,
      secret: '${ASTRAGO_CLIENT_SECRET}',
      redirectUris: expect.arrayContaining(['http://192.0.2.10:30080/*']),
      webOrigins: expect.arrayContaining(['http://192.0.2.10:30080']),
    })
    // The secret itself is in a Secret, never in the realm ConfigMap.
    expect(JSON.stringify(find(p, 'auth', 'keycloak-astrago-realm'))).not.toContain(keycloak.clientSecret)
    expect(find(p, 'auth', 'keycloak-astrago-client').stringData['client-secret']).toBe(keycloak.clientSecret)
    // Astrago's chart gets the same realm, client and secret (frontend env, as Xiilab's values.yaml.gotmpl sets it).
    const frontend = envOf(chartValues(p, 'astrago').frontend)
    expect(frontend).toMatchObject({
      AUTH_CLIENT_SECRET: keycloak.clientSecret,
      KEYCLOAK_REALME: keycloak.realm,
      KEYCLOAK_CLIENT_ID: keycloak.clientId,
    })
    expect(Object.keys(find(p, 'auth', 'keycloak-astrago-theme').data).sort()).toEqual([
      'astrago-logo.svg',
      'astrago.css',
      'theme.properties',
    ])
    const chart = Object.assign(
      {},
      ...p.stages.find((s) => s.name === 'auth')!.charts[0]!.values.map((v) => v.values),
    )
    expect(chart.extraStartupArgs).toBe('--import-realm')
    expect(chart.extraVolumeMounts).toEqual([
      { name: 'astrago-realm', mountPath: '/opt/bitnami/keycloak/data/import', readOnly: true },
      { name: 'astrago-theme', mountPath: '/opt/bitnami/keycloak/themes/astrago/login', readOnly: true },
    ])
    const themeVolume = chart.extraVolumes.find((v: { name: string }) => v.name === 'astrago-theme')
    expect(themeVolume.configMap.items.map((i: { key: string }) => i.key).sort()).toEqual(
      Object.keys(find(p, 'auth', 'keycloak-astrago-theme').data).sort(),
    )
  })

  it("installs Xiilab's chart with values derived from the site values as values.yaml.gotmpl derives them", async () => {
    const { plan: p, values } = await plan()
    const site = values as {
      keycloak: { adminPassword: string; clientSecret: string }
      mariadb: { rootPassword: string; password: string }
      astrago: { userInitPassword: string; nextauthSecret: string }
    }
    const stage = p.stages.find((s) => s.name === 'astrago')!
    // No hand-written workloads: the chart is the stage.
    expect(stage.objects).toEqual([])
    expect(stage.charts.map((c) => [c.chart, c.release, c.namespace])).toEqual([
      ['astrago', 'astrago', 'astrago'],
    ])
    const chart = chartValues(p, 'astrago')
    const keycloak = 'http://192.0.2.10:30080/auth'
    for (const component of ['core', 'batch']) {
      expect(envOf(chart[component]), component).toMatchObject({
        SPRING_DATASOURCE_URL: 'jdbc:mariadb://astrago-mariadb:3306/astrago',
        SPRING_DATASOURCE_USERNAME: 'astrago',
        SPRING_DATASOURCE_PASSWORD: site.mariadb.password,
        'SPRING_SECURITY_OAUTH2_RESOURCE-SERVER_JWT_ISSUER-URI': `${keycloak}/realms/astrago`,
        'SPRING_SECURITY_OAUTH2_RESOURCE-SERVER_JWT_JWK-SET-URI': `${keycloak}/realms/astrago/protocol/openid-connect/certs`,
        KEYCLOAK_REALM: 'astrago',
        'KEYCLOAK_AUTH-SERVER-URL': `${keycloak}/`,
        KEYCLOAK_RESOURCE: 'astrago-client',
        ADMIN_NAME: 'admin',
        ADMIN_PASSWORD: site.keycloak.adminPassword,
        'ADMIN_INIT-PASSWORD': site.astrago.userInitPassword,
        'ASTRAGO_PRIVATE-REGISTRY-URL': '192.0.2.1:8443',
      })
    }
    expect(envOf(chart.monitor)).toMatchObject({ SPRING_DATASOURCE_PASSWORD: site.mariadb.password })
    expect(envOf(chart.frontend)).toMatchObject({
      KEYCLOAK_HOST: `${keycloak}/`,
      NEXTAUTH_URL: 'http://192.0.2.10:30080',
      NEXTAUTH_SECRET: site.astrago.nextauthSecret,
      NEXT_PUBLIC_API_URL: 'http://astrago-backend-core:8080',
      NEXT_PUBLIC_BATCH_API_URL: 'http://astrago-backend-batch:8080',
      NEXT_PUBLIC_MONITOR_API_URL: 'http://astrago-backend-monitor:8080',
    })
    // Generated secrets, each its own.
    expect(
      new Set([site.astrago.nextauthSecret, site.astrago.userInitPassword, site.mariadb.password]).size,
    ).toBe(3)
    // MariaDB is the chart's subchart (astrago-mariadb) with the generated passwords.
    expect(chart.mariadb.auth).toEqual({
      rootPassword: site.mariadb.rootPassword,
      database: 'astrago',
      username: 'astrago',
      password: site.mariadb.password,
    })
    // Every image relocated to the site registry under its full upstream name; none left on the chart's default.
    expect(chart.global).toEqual({ imageRegistry: '' })
    expect(chart.core.image).toEqual({
      registry: '192.0.2.1:8443/docker.io',
      repository: 'xiilab/astrago-posco',
      tag: 'core-stage-c5ad',
    })
    for (const key of [
      'core',
      'batch',
      'monitor',
      'frontend',
      'proxy',
      'timePrediction',
      'scheduler',
      'metricServer',
      'mariadb',
    ])
      expect(chart[key].image.registry, key).toMatch(/^192\.0\.2\.1:8443\/(docker\.io|registry\.k8s\.io)$/)
    expect(chart.proxy.service).toEqual({ type: 'NodePort', nodePort: 30080 })
    expect(chart.nfs).toMatchObject({ storageClassName: 'astrago-nfs-csi', size: '10Gi' })
    // Loki, Promtail and the GPU process exporter come from the site registry too, with the site's sizes.
    expect(chartValues(p, 'logging').loki).toMatchObject({
      image: { repository: '192.0.2.1:8443/docker.io/grafana/loki' },
      persistence: { size: '10Gi', storageClass: 'astrago-nfs-csi' },
      config: { limits_config: { retention_period: '168h' } },
    })
    const gpu = p.stages.find((s) => s.name === 'gpu')!
    expect(gpu.charts.map((c) => c.chart)).toEqual(['gpu-operator', 'gpu-process-exporter'])
    expect(Object.assign({}, ...gpu.charts[1]!.values.map((v) => v.values))).toEqual({
      offline: { registry: '192.0.2.1:8443/nvcr.io' },
    })
    expect(gpu.objects.map((o) => o.object.metadata.name)).toEqual(
      expect.arrayContaining(['metrics-config', 'custom-mig-parted-config', 'nvidia-plugin-config-mps']),
    )
    // Grafana gets Loki as a datasource.
    const datasource = find(p, 'monitoring', 'astrago-loki-datasource')
    expect(datasource.metadata.labels).toMatchObject({ grafana_datasource: '1' })
    expect(datasource.data['loki-datasource.yaml']).toContain(
      'http://loki-stack-loki.loki-stack.svc.cluster.local:3100',
    )
  })
})
