import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { discoverImages } from '../../../src/charts/discover-images.js'
import { downloadChart, readChartMetadata } from '../../../src/charts/download.js'
import { fetchRepoIndex, type RepoIndex } from '../../../src/charts/repo-index.js'
import { buildRepoIndex } from '../../../src/charts/repo-writer.js'
import { AirgapError } from '../../../src/errors.js'
import type { ProgressEvent } from '../../../src/events/types.js'
import { findHelm } from '../../../src/helm/find-helm.js'
import { HttpClient } from '../../../src/net/http.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)

async function expectAirgapError(promise: Promise<unknown>, code: string): Promise<AirgapError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error, `expected ${code}`).toBeInstanceOf(AirgapError)
  expect((error as AirgapError).code, (error as AirgapError).message).toBe(code)
  return error as AirgapError
}

// Chart sources, written by hand. `demo` has an initContainer, a CronJob, an NVIDIA ClusterPolicy with
// {repository, image, version} triples, and a Prometheus resource only rendered when its API is declared.
const demoTemplates: Record<string, string> = {
  'deployment.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
        - name: init-db
          image: "{{ .Values.registry }}/tools/migrate:{{ .Values.tag }}"
      containers:
        - name: web
          image: "{{ .Values.registry }}/apps/web:{{ .Values.tag }}"
`,
  'cronjob.yaml': `apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ .Release.Name }}-cleanup
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: cleanup
              image: "{{ .Values.registry }}/tools/cleanup:{{ .Values.tag }}"
`,
  'clusterpolicy.yaml': `apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata:
  name: cluster-policy
spec:
  operator:
    defaultRuntime: containerd
  driver:
    enabled: true
    repository: nvcr.io/nvidia
    image: driver
    version: "{{ .Values.driverVersion }}"
  toolkit:
    repository: nvcr.io/nvidia/k8s
    image: container-toolkit
    version: v1.16.2-ubuntu20.04
  devicePlugin:
    image: nvcr.io/nvidia/k8s-device-plugin:v0.16.2
    args: [image]
  gdrcopy:
    enabled: false
    repository: nvcr.io/nvidia/cloud-native
    image: gdrdrv
    version: v2.4.1
  sandboxWorkloads:
    enabled: false
  sandboxDevicePlugin:
    enabled: true
    repository: nvcr.io/nvidia
    image: kubevirt-gpu-device-plugin
    version: v1.2.10
`,
  'prometheus.yaml': `{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: {{ .Release.Name }}
spec:
  image: quay.io/prometheus/prometheus:v2.54.1
{{- end }}
`,
}

const helmBinary = findTool('helm')

describe('charts against the real helm and a local chart repository', () => {
  let dir: string
  let helmHome: string
  let repoDir: string
  let builtDir: string
  let server: Server
  let base: string
  let http: HttpClient
  const requests: string[] = []

  async function helm(args: string[]): Promise<string> {
    try {
      const { stdout } = await run(helmBinary, args, {
        env: {
          ...process.env,
          HELM_CACHE_HOME: join(helmHome, 'cache'),
          HELM_CONFIG_HOME: join(helmHome, 'config'),
          HELM_DATA_HOME: join(helmHome, 'data'),
        },
        maxBuffer: 16 << 20,
      })
      return stdout
    } catch (error) {
      const e = error as { stderr?: string; message: string }
      throw new Error(`helm ${args.join(' ')}: ${e.message}\n${e.stderr ?? ''}`)
    }
  }

  async function makeChart(
    name: string,
    version: string,
    templates: Record<string, string>,
    values = '',
  ): Promise<void> {
    const src = join(dir, 'src', `${name}-${version}`, name)
    mkdirSync(join(src, 'templates'), { recursive: true })
    writeFileSync(
      join(src, 'Chart.yaml'),
      `apiVersion: v2\nname: ${name}\nversion: ${version}\nappVersion: "9.9"\ndescription: test chart ${name}\n`,
    )
    writeFileSync(join(src, 'values.yaml'), values)
    for (const [file, text] of Object.entries(templates)) writeFileSync(join(src, 'templates', file), text)
    await helm(['package', src, '--destination', repoDir])
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'astrago-charts-'))
    helmHome = join(dir, 'helm')
    repoDir = join(dir, 'repo')
    builtDir = join(dir, 'built')
    mkdirSync(repoDir)
    mkdirSync(join(builtDir, 'charts'), { recursive: true })
    const demoValues = 'registry: registry.example.com\ntag: "1.0.0"\ndriverVersion: "550.54.15"\n'
    await makeChart('demo', '1.2.0', demoTemplates, demoValues)
    await makeChart('demo', '1.3.0', demoTemplates, demoValues)
    // Versioned with a "v", as csi-driver-nfs is.
    await makeChart('vchart', 'v0.5.0', {
      'cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  image: "x:1"\n',
    })
    await makeChart('broken', '0.1.0', {
      'bad.yaml': '{{ fail "broken-chart-cannot-render" }}\n',
    })
    await helm(['repo', 'index', repoDir])

    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname
      requests.push(path)
      const [, prefix, ...rest] = path.split('/')
      const file = rest.join('/')
      const root =
        prefix === 'repo' || prefix === 'tampered' ? repoDir : prefix === 'built' ? builtDir : undefined
      if (!root || !file || file.split('/').includes('..')) {
        res.writeHead(404).end()
        return
      }
      readFile(join(root, file)).then(
        (data) => {
          if (prefix === 'tampered' && file.endsWith('.tgz')) data[data.length - 1]! ^= 0xff
          res.writeHead(200, { 'content-length': data.length }).end(data)
        },
        () => res.writeHead(404).end(),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    http = new HttpClient({ retry: { retries: 0, baseDelayMs: 10, maxDelayMs: 10 } })
  })

  afterAll(async () => {
    await http?.close()
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('downloads a chart and verifies it against the index digest, fetching a shared index once', async () => {
    const indexCache = new Map<string, Promise<RepoIndex>>()
    const events: ProgressEvent[] = []
    const sink = { emit: (e: ProgressEvent) => events.push(e) }
    requests.length = 0
    const chart = await downloadChart(
      http,
      { name: 'demo', version: '1.2.0', repo: `${base}/repo` },
      { indexCache, sink },
    )
    const onDisk = await readFile(join(repoDir, 'demo-1.2.0.tgz'))
    expect(chart.bytes.equals(onDisk)).toBe(true)
    expect(chart.sha256).toBe(createHash('sha256').update(onDisk).digest('hex'))
    expect(chart.entry.digest).toBe(chart.sha256)
    expect(chart.url).toBe(`${base}/repo/demo-1.2.0.tgz`)
    expect(chart.metadata).toMatchObject({
      name: 'demo',
      version: '1.2.0',
      appVersion: '9.9',
      apiVersion: 'v2',
    })
    expect(events).toEqual([])

    // "0.5.0" finds the chart versioned "v0.5.0"; the index is not fetched again.
    const v = await downloadChart(
      http,
      { name: 'vchart', version: '0.5.0', repo: `${base}/repo/` },
      { indexCache },
    )
    expect(v.entry.version).toBe('v0.5.0')
    expect(v.metadata.version).toBe('v0.5.0')
    expect(requests.filter((p) => p.endsWith('index.yaml'))).toHaveLength(2) // "…/repo" and "…/repo/" are two keys
    await downloadChart(http, { name: 'demo', version: '1.3.0', repo: `${base}/repo` }, { indexCache })
    expect(requests.filter((p) => p.endsWith('index.yaml'))).toHaveLength(2)
  })

  it('fails with E_INTEGRITY when the served chart does not match the index digest', async () => {
    const error = await expectAirgapError(
      downloadChart(http, { name: 'demo', version: '1.2.0', repo: `${base}/tampered` }),
      'E_INTEGRITY',
    )
    expect(error.data?.url).toBe(`${base}/tampered/demo-1.2.0.tgz`)
    expect(error.data?.expected).not.toBe(error.data?.actual)
    expect(error.message).toContain(String(error.data?.expected))
  })

  it('a missing version names the available ones; a missing repository is E_REMOTE', async () => {
    const error = await expectAirgapError(
      downloadChart(http, { name: 'demo', version: '1.4.0', repo: `${base}/repo` }),
      'E_REMOTE',
    )
    expect(error.data?.available).toEqual(['1.3.0', '1.2.0'])
    expect(error.message).toContain('1.3.0')
    expect(error.message).toContain(`${base}/repo`)

    const missing = await expectAirgapError(fetchRepoIndex(http, `${base}/nothing-here`), 'E_REMOTE')
    expect(missing.data?.status).toBe(404)
    expect(missing.message).toContain(`${base}/nothing-here/index.yaml`)
  })

  it('pulls oci:// charts through the given hook, and says so when there is none', async () => {
    const bytes = await readFile(join(repoDir, 'demo-1.2.0.tgz'))
    const refs: string[] = []
    const chart = await downloadChart(
      http,
      { name: 'demo', version: '1.2.0', repo: 'oci://registry.example.com:5000/charts/' },
      {
        ociPull: async (ref) => {
          refs.push(ref)
          return bytes
        },
      },
    )
    expect(refs).toEqual(['registry.example.com:5000/charts/demo:1.2.0'])
    expect(chart.url).toBe('oci://registry.example.com:5000/charts/demo:1.2.0')
    expect(chart.entry).toMatchObject({ name: 'demo', version: '1.2.0', digest: chart.sha256 })

    await expectAirgapError(
      downloadChart(http, { name: 'demo', version: '1.2.0', repo: 'oci://registry.example.com/charts' }),
      'E_INTERNAL',
    )
    // The registry served another chart than asked for.
    await expectAirgapError(
      downloadChart(
        http,
        { name: 'demo', version: '1.3.0', repo: 'oci://registry.example.com/charts' },
        { ociPull: async () => bytes },
      ),
      'E_INTEGRITY',
    )
  })

  it('reads Chart.yaml from the archive in memory, and refuses what is not a chart', async () => {
    const meta = await readChartMetadata(await readFile(join(repoDir, 'vchart-v0.5.0.tgz')))
    expect(meta).toEqual({
      apiVersion: 'v2',
      name: 'vchart',
      version: 'v0.5.0',
      appVersion: '9.9',
      description: 'test chart vchart',
    })
    await expectAirgapError(readChartMetadata(Buffer.from('definitely not a tgz')), 'E_INTEGRITY')
    const good = await readFile(join(repoDir, 'demo-1.2.0.tgz'))
    await expectAirgapError(readChartMetadata(good.subarray(0, Math.floor(good.length / 2))), 'E_INTEGRITY')
  })

  it('discovers images of a Deployment, an initContainer, a CronJob and custom resources', async () => {
    const chart = await readFile(join(repoDir, 'demo-1.2.0.tgz'))
    const { images, completedAtRunTime } = await discoverImages(chart, {
      helmBinary,
      releaseName: 'rel',
      namespace: 'apps',
      values: { tag: '2.0.0' },
      apiVersions: ['monitoring.coreos.com/v1'],
    })
    // The ClusterPolicy: a disabled component (gdrcopy) and a sandbox-only one (sandboxWorkloads off) run nothing;
    // the driver's image gets the node OS appended at run time, so it is not an image by itself.
    expect(completedAtRunTime).toEqual([
      { ref: 'nvcr.io/nvidia/driver:550.54.15', sources: ['ClusterPolicy/cluster-policy spec.driver'] },
    ])
    expect(images).toEqual([
      {
        ref: 'nvcr.io/nvidia/k8s-device-plugin:v0.16.2',
        sources: ['ClusterPolicy/cluster-policy spec.devicePlugin'],
      },
      {
        ref: 'nvcr.io/nvidia/k8s/container-toolkit:v1.16.2-ubuntu20.04',
        sources: ['ClusterPolicy/cluster-policy spec.toolkit'],
      },
      { ref: 'quay.io/prometheus/prometheus:v2.54.1', sources: ['Prometheus/rel spec'] },
      { ref: 'registry.example.com/apps/web:2.0.0', sources: ['Deployment/rel-web container web'] },
      { ref: 'registry.example.com/tools/cleanup:2.0.0', sources: ['CronJob/rel-cleanup container cleanup'] },
      {
        ref: 'registry.example.com/tools/migrate:2.0.0',
        sources: ['Deployment/rel-web initContainer init-db'],
      },
    ])

    // From the .tgz path, without the API declared: no Prometheus; the values file's own values apply.
    const fromPath = await discoverImages(join(repoDir, 'demo-1.3.0.tgz'), {
      helmBinary,
      releaseName: 'rel',
      namespace: 'apps',
    })
    const refs = fromPath.images.map((i) => i.ref)
    expect(refs).toContain('registry.example.com/apps/web:1.0.0')
    expect(refs.some((r) => r.includes('prometheus'))).toBe(false)
  })

  it('a chart that fails to render is E_INPUT with helm message', async () => {
    const error = await expectAirgapError(
      discoverImages(join(repoDir, 'broken-0.1.0.tgz'), {
        helmBinary,
        releaseName: 'r',
        namespace: 'default',
      }),
      'E_INPUT',
    )
    expect(error.message).toContain('broken-chart-cannot-render')
    expect(error.message).toContain('broken')

    // helm itself missing is the machine's problem, not the chart's; an abort stops before helm runs.
    const chart = join(repoDir, 'vchart-v0.5.0.tgz')
    const options = { releaseName: 'r', namespace: 'default' }
    await expectAirgapError(
      discoverImages(chart, { ...options, helmBinary: join(dir, 'no-helm') }),
      'E_ENVIRONMENT',
    )
    const aborted = discoverImages(chart, { ...options, helmBinary, signal: AbortSignal.abort() })
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('finds helm from the explicit path, ASTRAGO_HELM, then PATH; missing is E_ENVIRONMENT', () => {
    expect(findHelm(helmBinary, {})).toBe(helmBinary)
    expect(findHelm(undefined, { ASTRAGO_HELM: helmBinary })).toBe(helmBinary)
    expect(findHelm(undefined, { PATH: join(helmBinary, '..') })).toBe(helmBinary)
    for (const attempt of [
      () => findHelm(join(dir, 'no-helm'), { PATH: join(helmBinary, '..') }),
      () => findHelm(undefined, { PATH: dir }),
    ]) {
      let caught: unknown
      try {
        attempt()
      } catch (error) {
        caught = error
      }
      expect((caught as AirgapError).code).toBe('E_ENVIRONMENT')
      expect((caught as AirgapError).hints.length).toBeGreaterThan(0)
    }
  })

  it('writes an index that the real helm adds as a repository and pulls from', async () => {
    const charts = []
    for (const file of ['demo-1.2.0.tgz', 'demo-1.3.0.tgz', 'vchart-v0.5.0.tgz']) {
      const bytes = await readFile(join(repoDir, file))
      const meta = await readChartMetadata(bytes)
      await copyFile(join(repoDir, file), join(builtDir, 'charts', file))
      charts.push({
        name: meta.name,
        version: meta.version,
        appVersion: meta.appVersion,
        description: meta.description,
        digest: createHash('sha256').update(bytes).digest('hex'),
        fileName: `charts/${file}`,
      })
    }
    const text = buildRepoIndex(charts)
    expect(buildRepoIndex([...charts].reverse())).toBe(text)
    await writeFile(join(builtDir, 'index.yaml'), text)

    await helm(['repo', 'add', 'built', `${base}/built`])
    const found = JSON.parse(await helm(['search', 'repo', 'built/', '--versions', '-o', 'json'])) as {
      name: string
      version: string
    }[]
    expect(found.map((c) => `${c.name}@${c.version}`).sort()).toEqual([
      'built/demo@1.2.0',
      'built/demo@1.3.0',
      'built/vchart@v0.5.0',
    ])
    const out = join(dir, 'pulled')
    mkdirSync(out)
    await helm(['pull', 'built/demo', '--version', '1.2.0', '--destination', out])
    await helm(['pull', 'built/vchart', '--version', 'v0.5.0', '--destination', out])
    expect(
      (await readFile(join(out, 'demo-1.2.0.tgz'))).equals(await readFile(join(repoDir, 'demo-1.2.0.tgz'))),
    ).toBe(true)
    expect((await readFile(join(out, 'vchart-v0.5.0.tgz'))).length).toBeGreaterThan(0)

    // Our own client reads it back too.
    const again = await downloadChart(http, { name: 'demo', version: '1.3.0', repo: `${base}/built` })
    expect(again.url).toBe(`${base}/built/charts/demo-1.3.0.tgz`)
  })
})
