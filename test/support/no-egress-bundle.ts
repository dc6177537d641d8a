import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { runCli } from './cli.js'
import { pushImage } from './images.js'
import { startRegistry } from './registry.js'

/**
 * A small real bundle for install-side tests (the air-gap audit, the no-egress proof), made by the built CLI from a
 * real upstream registry seeded with synthetic images: stage `core` (the `astrago` namespace and a Deployment of
 * docker.io/xiilab/astrago:core-v1) and stage `jobs` (a Job of `busybox:1.36`, written unqualified on purpose).
 * The upstream registry is stopped once the bundle is written: everything after runs from the bundle alone.
 */
export const SMALL_BUNDLE_IMAGES = ['docker.io/xiilab/astrago:core-v1', 'docker.io/library/busybox:1.36']

export async function buildSmallBundle(work: string, helm: string): Promise<string> {
  const write = (path: string, text: string) => {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
  }
  const upstream = await startRegistry()
  try {
    await pushImage(upstream, {
      repository: 'docker.io/xiilab/astrago',
      tag: 'core-v1',
      layers: [{ seed: 'core', size: 100_000 }],
    })
    await pushImage(upstream, {
      repository: 'docker.io/library/busybox',
      tag: '1.36',
      layers: [{ seed: 'busybox', size: 50_000 }],
    })
    write(
      join(work, 'manifests', 'core', 'core.yaml'),
      `apiVersion: v1
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
      containers: [{name: core, image: docker.io/xiilab/astrago:core-v1}]
`,
    )
    write(
      join(work, 'manifests', 'jobs', 'migrate.yaml'),
      `apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: astrago}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox:1.36}]
`,
    )
    const definition = join(work, 'small.yaml')
    write(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'small', version: '1.0.0' },
        stages: [
          { name: 'core', path: './manifests/core' },
          { name: 'jobs', path: './manifests/jobs' },
        ],
      }),
    )
    const res = await runCli([
      'bundle',
      definition,
      '--output-dir',
      work,
      '--json',
      '--helm',
      helm,
      '--mirror',
      `docker.io=${upstream.url}/docker.io`,
    ])
    if (res.code !== 0) throw new Error(`bundle failed (exit ${res.code}): ${res.stderr}${res.stdout}`)
    return res.result.path as string
  } finally {
    await upstream.stop()
  }
}
