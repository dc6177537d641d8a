// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ site.x }} is the site value syntax under test
import { describe, expect, it } from 'vitest'
import type { BundleMetadata, LockedChart } from '../../src/bundle/metadata.js'
import { loadStages, parseDuration, parseStage, type StageSource } from '../../src/deploy/load-stages.js'
import { planStages } from '../../src/deploy/plan.js'
import { AirgapError } from '../../src/errors.js'

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

/** An in-memory bundle: stage name → { relative path → text }. */
function source(stages: Record<string, Record<string, string>>): StageSource {
  const members = new Map<string, string>()
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

async function problemsOf(stages: Record<string, Record<string, string>>): Promise<string[]> {
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
      'manifests/s/stage.yaml timeot: unknown field (did you mean "timeout"?); expected one of apiVersion, kind, timeout, namespace, charts, readiness, values',
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

  it('changes the values digest with the values and the image registry, not with key order', () => {
    const s = stage({ 'a.yaml': deployment })
    const digest = (values: Record<string, unknown>, imageRegistry?: string) =>
      planStages([s], values, { imageRegistry }).valuesDigest
    expect(digest({ a: 1, b: { c: 2, d: 3 } })).toBe(digest({ b: { d: 3, c: 2 }, a: 1 }))
    expect(digest({ a: 1 })).not.toBe(digest({ a: 2 }))
    expect(digest({ a: 1 })).not.toBe(digest({ a: 1 }, 'harbor.site'))
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
