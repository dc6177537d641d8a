import { execFile } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { createChart } from './charts.js'
import { type FileServer, startFileServer } from './file-server.js'
import { pushImage } from './images.js'
import { startRegistry, type TestRegistry } from './registry.js'

/**
 * The small site bundle the install-side tests share, made by the built CLI from real upstreams seeded with
 * synthetic content:
 *   stage core  the `astrago` namespace and a Deployment of docker.io/xiilab/astrago:core-v1
 *   stage web   (optional) the chart `web` 1.0.0 from a chart repository, rendering quay.io/demo/web:1.0, with the
 *               stage.yaml given (default: the chart alone, release web in namespace web)
 *   stage jobs  (optional) a Job of `busybox:1.36`, written unqualified on purpose
 * `prepareSiteBundle` starts the upstream registry and chart repository and returns the `bundle` arguments that
 * mirror them; `stop()` ends them, so everything after runs from the bundle alone.
 */
const run = promisify(execFile)

export const CORE_IMAGE = 'docker.io/xiilab/astrago:core-v1'
export const WEB_IMAGE = 'quay.io/demo/web:1.0'
export const JOBS_IMAGE = 'docker.io/library/busybox:1.36'

const CORE_MANIFEST = `apiVersion: v1
kind: Namespace
metadata: {name: astrago}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: core, namespace: astrago}
spec:
  replicas: 1
  selector: {matchLabels: {app: core}}
  template:
    metadata: {labels: {app: core}}
    spec:
      containers: [{name: core, image: ${CORE_IMAGE}}]
`

const WEB_STAGE = `apiVersion: airgap.astrago.io/v1alpha1
kind: Stage
timeout: 2m
charts:
  - {chart: web, version: 1.0.0, release: web, namespace: web}
`

const JOBS_MANIFEST = `apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: astrago}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox:1.36}]
`

export interface SiteBundleOptions {
  helm: string
  /** The bundle's name (default site). */
  name?: string
  /** Stage web, with this stage.yaml (true: the chart alone). */
  web?: boolean | { stageYaml: string }
  /** Stage jobs. */
  jobs?: boolean
}

export interface SiteBundleFixture {
  definition: string
  /** `bundle <definition> --json --helm … --mirror …`: add the output (and anything else). */
  bundleArgs: string[]
  /** Every image the bundle holds, fully qualified. */
  images: string[]
  stop(): Promise<void>
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
}

export async function prepareSiteBundle(
  work: string,
  options: SiteBundleOptions,
): Promise<SiteBundleFixture> {
  const upstream: TestRegistry = await startRegistry()
  let charts: FileServer | undefined
  try {
    const images = [CORE_IMAGE]
    await pushImage(upstream, {
      repository: 'docker.io/xiilab/astrago',
      tag: 'core-v1',
      layers: [{ seed: 'core', size: 100_000 }],
    })
    write(join(work, 'manifests', 'core', 'core.yaml'), CORE_MANIFEST)
    const stages = [{ name: 'core', path: './manifests/core' }]
    const mirrors = ['--mirror', `docker.io=${upstream.url}/docker.io`]
    const definition: Record<string, unknown> = {
      apiVersion: 'airgap.astrago.io/v1alpha1',
      kind: 'Bundle',
      metadata: { name: options.name ?? 'site', version: '1.0.0' },
    }
    if (options.web) {
      images.push(WEB_IMAGE)
      await pushImage(upstream, {
        repository: 'quay.io/demo/web',
        tag: '1.0',
        layers: [{ seed: 'web', size: 100_000 }],
      })
      const repo = join(work, 'repo')
      mkdirSync(repo, { recursive: true })
      await createChart(repo, { name: 'web', version: '1.0.0', images: [WEB_IMAGE] })
      rmSync(join(repo, 'web'), { recursive: true })
      await run(options.helm, ['repo', 'index', repo])
      charts = await startFileServer(repo)
      write(
        join(work, 'manifests', 'web', 'stage.yaml'),
        options.web === true ? WEB_STAGE : options.web.stageYaml,
      )
      stages.push({ name: 'web', path: './manifests/web' })
      definition.charts = [{ name: 'web', version: '1.0.0', repo: 'https://charts.example.org/stable' }]
      mirrors.push('--mirror', `quay.io=${upstream.url}/quay.io`)
      mirrors.push('--mirror', `https://charts.example.org/stable=${charts.url}`)
    }
    if (options.jobs) {
      images.push(JOBS_IMAGE)
      await pushImage(upstream, {
        repository: 'docker.io/library/busybox',
        tag: '1.36',
        layers: [{ seed: 'busybox', size: 50_000 }],
      })
      write(join(work, 'manifests', 'jobs', 'migrate.yaml'), JOBS_MANIFEST)
      stages.push({ name: 'jobs', path: './manifests/jobs' })
    }
    definition.stages = stages
    const file = join(work, `${options.name ?? 'site'}.yaml`)
    write(file, JSON.stringify(definition))
    return {
      definition: file,
      bundleArgs: ['bundle', file, '--json', '--helm', options.helm, ...mirrors],
      images,
      stop: async () => {
        await Promise.all([charts?.stop(), upstream.stop()])
      },
    }
  } catch (error) {
    await Promise.all([charts?.stop(), upstream.stop()])
    throw error
  }
}
