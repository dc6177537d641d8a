import { runCli } from './cli.js'
import { CORE_IMAGE, JOBS_IMAGE, prepareSiteBundle } from './site-bundle.js'

/**
 * A small real bundle for install-side tests (the air-gap audit, the no-egress proof): the site bundle's stage `core`
 * (the `astrago` namespace and a Deployment of docker.io/xiilab/astrago:core-v1) and stage `jobs` (a Job of
 * `busybox:1.36`, written unqualified on purpose). The upstream registry is stopped once the bundle is written:
 * everything after runs from the bundle alone.
 */
export const SMALL_BUNDLE_IMAGES = [CORE_IMAGE, JOBS_IMAGE]

export async function buildSmallBundle(work: string, helm: string): Promise<string> {
  const fixture = await prepareSiteBundle(work, { helm, name: 'small', jobs: true })
  try {
    const res = await runCli([...fixture.bundleArgs, '--output-dir', work])
    if (res.code !== 0) throw new Error(`bundle failed (exit ${res.code}): ${res.stderr}${res.stdout}`)
    return res.result.path as string
  } finally {
    await fixture.stop()
  }
}
