import { type ChildProcess, execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, loopbackServe, waitFor } from '../../support/net.js'
import { bundleOneImage, type OneImageBundle } from '../../support/one-image-bundle.js'
import { type Serving, startServe, stopServe } from '../../support/serve-process.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)

/**
 * `serve --workers 2` with the built CLI over TLS: skopeo pulls through the workers and pushes through the primary
 * they hand on to, failed logins are counted by the client's own address, a worker killed is started again, and
 * stopping ends every process.
 */
describe('serve --workers', () => {
  let work: string
  let fixture: OneImageBundle
  let server: ChildProcess | undefined
  let serving: Serving & { workerPids: number[] }
  let certDir: string
  const events: { code?: string; data?: Record<string, unknown> }[] = []
  const image = 'nvcr.io/nvidia/k8s-device-plugin:v0.17.0'

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-serve-workers-'))
    fixture = await bundleOneImage(work, { image, size: 2_000_000, name: 'site', version: '2.0.0' })
    const started = await startServe([
      fixture.bundle,
      ...loopbackServe(await freePort()),
      '--workers',
      '2',
      '--user',
      'field',
    ])
    server = started.server
    serving = started.serving as Serving & { workerPids: number[] }
    let out = ''
    server.stdout!.on('data', (d: Buffer) => {
      out += d
      const lines = out.split('\n')
      out = lines.pop() ?? ''
      for (const line of lines) if (line.startsWith('{')) events.push(JSON.parse(line))
    })
    certDir = join(work, 'certs')
    mkdirSync(certDir)
    copyFileSync(serving.caFile, join(certDir, 'ca.crt'))
  }, 180_000)

  afterAll(async () => {
    await stopServe(server)
    await fixture?.upstream.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  const skopeo = (args: string[]) => run(findTool('skopeo'), ['--insecure-policy', ...args])
  const curlStatus = async (url: string, extra: string[] = []) =>
    (
      await run('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cacert',
        serving.caFile,
        ...extra,
        url,
      ])
    ).stdout

  it('runs two workers beside itself, and pulls, pushes and pulls back what was pushed', async () => {
    expect(serving.workerPids).toHaveLength(2)
    for (const pid of serving.workerPids) expect(() => process.kill(pid, 0)).not.toThrow()
    const source = `docker://${serving.registryHost}/${image}`
    await skopeo(['copy', '--src-cert-dir', certDir, source, `oci:${join(work, 'pulled')}:x`])
    const raw = await skopeo(['inspect', '--raw', '--cert-dir', certDir, source])
    expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(fixture.digest)

    const password = readFileSync(serving.users[0]!.passwordFile, 'utf8').trim()
    const target = `docker://${serving.registryHost}/site/extra/device-plugin:local`
    await skopeo([
      'copy',
      '--src-cert-dir',
      certDir,
      '--dest-cert-dir',
      certDir,
      '--dest-creds',
      `field:${password}`,
      source,
      target,
    ])
    await skopeo(['copy', '--src-cert-dir', certDir, target, `oci:${join(work, 'pushed')}:x`])
    const pushed = await skopeo(['inspect', '--raw', '--cert-dir', certDir, target])
    expect(pushed.stdout).toBe(raw.stdout)
  }, 120_000)

  it('counts failed logins by the address of the client, not of the worker that handed them on', async () => {
    const statuses: string[] = []
    for (let i = 0; i < 12; i++)
      statuses.push(await curlStatus(`${serving.url}/v2/`, ['-u', `field:guess-${i}`]))
    expect(statuses.slice(0, 3)).toEqual(['401', '401', '401'])
    expect(statuses.at(-1)).toBe('429')
    const refused = events.filter((e) => e.code === 'W_REGISTRY_AUTH')
    expect(refused.length).toBeGreaterThan(0)
    for (const e of refused) expect(e.data?.address).toBe('127.0.0.1')
  })

  it('starts a worker again when one dies, and pulls go on', async () => {
    const [victim] = serving.workerPids
    process.kill(victim!, 'SIGKILL')
    await waitFor('the worker to be started again', async () =>
      events.some((e) => e.code === 'W_SERVE_WORKER_EXITED' && e.data?.pid === victim),
    )
    const blobs = await skopeo([
      'copy',
      '--src-cert-dir',
      certDir,
      `docker://${serving.registryHost}/${image}`,
      `oci:${join(work, 'again')}:x`,
    ])
    expect(blobs.stderr).not.toMatch(/error/i)
  })

  it('ends every worker when it stops', async () => {
    let pids: number[] = []
    await waitFor('two workers again', async () => {
      pids = (await run('pgrep', ['-P', String(server!.pid)])).stdout.trim().split('\n').map(Number)
      return pids.length === 2
    })
    await stopServe(server)
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow()
  })
})
