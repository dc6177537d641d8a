import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildSmallBundle, SMALL_BUNDLE_IMAGES } from '../../support/no-egress-bundle.js'
import { findTool } from '../../support/tools.js'

const ROOT = join(import.meta.dirname, '..', '..', '..')
const SITE_SCRIPT = join(ROOT, 'test', 'support', 'no-egress-site.ts')

interface SiteRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * The no-egress proof: the whole install side (the site server, the Kubernetes control plane, `install` of a bundle
 * through the built CLI, and the air-gap audit) runs in a network namespace that has only loopback, so nothing on
 * the site side can reach the internet, and it succeeds. The bundle is built outside first (bundling is the
 * connected side). The namespace is also a PID namespace whose init is killed with the unshare process
 * (--kill-child), so the kernel ends every process left in it.
 */
describe('no egress on the site side', () => {
  let work: string
  let bundle: string

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-no-egress-'))
    bundle = await buildSmallBundle(work, findTool('helm'))
  })

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  function runInNamespace(timeoutMs: number): Promise<SiteRun> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        'unshare',
        [
          '--net',
          '--pid',
          '--fork',
          '--kill-child',
          'sh',
          '-c',
          'ip link set lo up && node --import tsx "$0" "$1" "$2"',
          SITE_SCRIPT,
          bundle,
          work,
        ],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => {
        stdout += d
      })
      child.stderr.on('data', (d: Buffer) => {
        stderr += d
      })
      // unshare dying takes the namespace's init, and so every process in it, with it.
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      child.on('error', reject)
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        resolve({ code, signal, stdout, stderr })
      })
    })
  }

  it('serves, installs and audits a bundle with only loopback', async () => {
    const run = await runInNamespace(150_000)
    const line = run.stdout.split('\n').find((l) => l.startsWith('{"type":"no-egress"'))
    expect(line, `exit ${run.code} ${run.signal}\n${run.stderr.slice(-4000)}`).toBeDefined()
    // biome-ignore lint/suspicious/noExplicitAny: the script's JSON report; the assertions below check its fields
    const report = JSON.parse(line!) as { result?: Record<string, any>; error?: string }
    expect(report.error).toBeUndefined()
    const result = report.result!

    // The namespace has no way out: only loopback, and a connection elsewhere fails at once.
    expect(result.netns).not.toBe(readlinkSync('/proc/self/ns/net'))
    expect(result.interfaces).toEqual(['lo'])
    for (const probe of result.probes) {
      expect(probe.code, probe.address).toBe('ENETUNREACH')
      expect(probe.ms).toBeLessThan(1000)
    }

    // The install (serve → stages → audit against the served registry) succeeds from the bundle alone.
    expect(result.install.error, result.install.stderr).toBeUndefined()
    expect(result.install.code).toBe(0)
    expect(result.install.result.install.stages.map((s: { action: string }) => s.action)).toEqual([
      'applied',
      'applied',
    ])
    expect(result.install.result.audit).toMatchObject({ ok: 2, missing: 0, invalid: 0 })
    expect(result.install.result.audit.images.map((i: { image: string }) => i.image).sort()).toEqual(
      [...SMALL_BUNDLE_IMAGES].sort(),
    )

    // The audit of the whole cluster against the separately served registry: every image resolves on the site.
    expect(result.audit.error, result.audit.stderr).toBeUndefined()
    expect(result.audit.code, result.audit.stderr).toBe(0)
    expect(result.audit.result).toMatchObject({ namespaces: 'all', ok: 2, missing: 0 })

    // Nothing is left running in the namespace.
    expect(run.code).toBe(0)
    expect(processesIn(result.netns)).toEqual([])
  })
})

/** Pids of the processes whose network namespace is `netns` (net:[inode]). */
function processesIn(netns: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === netns) pids.push(Number(entry))
    } catch {}
  }
  return pids
}
