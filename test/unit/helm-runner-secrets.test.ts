/**
 * What helm's output may reach: a failing helm's stdout (the release JSON, values and passwords included) never
 * reaches the error message, stderr is shown with secret-looking values redacted, and an `upgrade --install` whose
 * output is not the release JSON is an error instead of a release recorded at revision 0. helm here is a small shell
 * script standing in for the binary: real helm prints its release JSON only on success, so these outputs cannot be
 * produced with it on demand.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import { HelmRunner, redactHelmText } from '../../src/helm/helm-runner.js'

const work = mkdtempSync(join(tmpdir(), 'astrago-helm-secrets-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function fakeHelm(name: string, upgrade: string): HelmRunner {
  const file = join(work, name)
  writeFileSync(
    file,
    `#!/bin/sh\ncase "$1" in\n  status) echo 'Error: release: not found' >&2; exit 1;;\n  upgrade) ${upgrade};;\nesac\n`,
  )
  chmodSync(file, 0o755)
  return new HelmRunner({ helm: file, kubeconfig: join(work, 'kubeconfig'), workDir: work })
}

const upgrade = (helm: HelmRunner) =>
  helm.upgradeInstall({
    release: 'web',
    namespace: 'web',
    chartFile: 'web.tgz',
    valuesFiles: [],
    timeoutMs: 1000,
  })

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('expected a failure')
}

describe('helm output and secrets', () => {
  it('never puts stdout of a failing helm into the error', async () => {
    const helm = fakeHelm(
      'stdout-only',
      `echo '{"name":"web","config":{"adminPassword":"hunter2-s3cret"}}'; exit 1`,
    )
    const error = await failure(upgrade(helm))
    expect(error.message).toContain('helm upgrade failed')
    expect(error.message).not.toContain('hunter2-s3cret')
  })

  it('redacts secret-looking values in stderr', async () => {
    const helm = fakeHelm(
      'stderr',
      `echo 'Error: values do not meet the specifications: adminPassword: hunter2-s3cret is too short' >&2; exit 1`,
    )
    const error = await failure(upgrade(helm))
    expect(error.message).toContain('is too short')
    expect(error.message).not.toContain('hunter2-s3cret')
  })

  it('an upgrade whose output is not the release JSON is an error, not revision 0', async () => {
    const helm = fakeHelm('garbage', `echo 'Release "web" has been upgraded. Happy Helming!'; exit 0`)
    const error = await failure(upgrade(helm))
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_ENVIRONMENT')
  })

  it('the release JSON gives its revision', async () => {
    const helm = fakeHelm('ok', `echo '{"name":"web","version":3}'; exit 0`)
    expect(await upgrade(helm)).toEqual({ revision: 3 })
  })

  it('redactHelmText hides values after secret-like keys and URL passwords', () => {
    expect(redactHelmText('token=abc "dbPassword": "x y" url https://u:pw@h/x')).toBe(
      'token=<redacted> "dbPassword": <redacted> url https://u:<redacted>@h/x',
    )
  })
})
