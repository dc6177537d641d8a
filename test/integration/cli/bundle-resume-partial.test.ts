import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, runCli } from '../../support/cli.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pushImage } from '../../support/images.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const fileSha = (path: string) => sha256(readFileSync(path))

/**
 * A rerun of `bundle` trusts its journal only together with the file the journal describes. When `<out>.partial` is
 * gone (deleted to free space) the journal's "done" members are not on disk, and the run must start over rather than
 * skip them; when the earlier run renamed its finished file into place and stopped before removing the journal, the
 * finished file is the journal's file, and the rerun takes it back. Both end byte-identical to a clean run.
 */
describe('bundle resume when the partial file is gone', () => {
  let work: string
  let registry: TestRegistry
  /** The same folder served three ways: throttled hard, throttled a little, and at full speed. */
  let slow: FileServer
  let medium: FileServer
  let fast: FileServer
  let definition: string
  let cleanSha: string

  const mirrors = (files: FileServer) => [
    '--mirror',
    `docker.io=${registry.url}/docker.io`,
    '--mirror',
    `https://downloads.example.org=${files.url}/downloads`,
  ]

  /** Runs the CLI, calling `watch` every 50 ms; SIGKILLs it when `watch` returns true. Resolves with the exit. */
  const runWatching = (args: string[], watch: () => boolean) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'ignore'] })
      const timer = setInterval(() => {
        if (watch()) child.kill('SIGKILL')
      }, 50)
      child.on('error', reject)
      child.on('close', (code, signal) => {
        clearInterval(timer)
        resolve({ code, signal })
      })
    })

  const readText = (path: string) => {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return ''
    }
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-bundle-resume-it-'))
    registry = await startRegistry({ flavor: 'distribution-v3' })
    await pushImage(registry, {
      repository: 'docker.io/library/app',
      tag: '1.0',
      layers: [{ seed: 'resume-app', size: 1_500_000 }],
    })
    const site = join(work, 'site')
    mkdirSync(join(site, 'downloads'), { recursive: true })
    const slowFile = randomBytes(2_000_000)
    writeFileSync(join(site, 'downloads', 'slow.bin'), slowFile)
    slow = await startFileServer(site, { throttle: { path: '/downloads/slow.bin', bytesPerSecond: 50_000 } })
    medium = await startFileServer(site, {
      throttle: { path: '/downloads/slow.bin', bytesPerSecond: 600_000 },
    })
    fast = await startFileServer(site)

    definition = join(work, 'resume.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'resume', version: '1.0.0' },
        images: ['docker.io/library/app:1.0'],
        files: [
          { url: 'https://downloads.example.org/slow.bin', sha256: sha256(slowFile), path: 'slow.bin' },
        ],
      }),
    )
    const clean = await runCli(['bundle', definition, '--output', join(work, 'clean.tar'), ...mirrors(fast)])
    expect(clean.code, clean.stderr).toBe(0)
    cleanSha = fileSha(join(work, 'clean.tar'))
  })

  afterAll(async () => {
    await Promise.all([slow?.stop(), medium?.stop(), fast?.stop(), registry?.stop()])
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('starts over, with a warning, when the journal names members of a partial file that was deleted', async () => {
    const output = join(work, 'deleted', 'b.tar')
    const journal = `${output}.journal`
    // Killed once the journal records the image's blobs as done (the slow file is still far from its first MiB).
    const killed = await runWatching(['bundle', definition, '--output', output, ...mirrors(slow)], () =>
      readText(journal).includes('"done"'),
    )
    expect(killed.signal).toBe('SIGKILL')
    expect(readText(journal)).toMatch(/"done"/)
    rmSync(`${output}.partial`)

    const rerun = await runCli(['bundle', definition, '--output', output, '--json', ...mirrors(fast)])
    expect(rerun.error).toBeUndefined()
    expect(rerun.code).toBe(0)
    // The members the journal called done are really in the file: verify passes, and the bytes are a clean run's.
    const verify = await runCli(['verify', output, '--json'])
    expect(verify.error).toBeUndefined()
    expect(verify.code).toBe(0)
    expect(fileSha(output)).toBe(cleanSha)
    expect(rerun.result.resumed).toBe(false)
    const warning = rerun.events.find((e) => e.type === 'log' && e.code === 'W_RESUME_DISCARDED')
    expect(warning).toMatchObject({ level: 'warn' })
    expect(existsSync(journal)).toBe(false)
  })

  it('takes back a finished file when the run stopped between renaming it and removing its journal', async () => {
    const output = join(work, 'renamed', 'b.tar')
    const journal = `${output}.journal`
    // The journal as it was at some checkpoint after the image's blobs were done; the run then finishes normally.
    let kept = ''
    const first = await runWatching(['bundle', definition, '--output', output, ...mirrors(medium)], () => {
      const text = readText(journal)
      if (text.includes('"done"')) kept = text
      return false
    })
    expect(first.code).toBe(0)
    expect(kept).toMatch(/"done"/)
    expect(existsSync(journal)).toBe(false)
    // A crash right after the rename: the finished file is in place, and the journal is still there.
    writeFileSync(journal, kept)

    const rerun = await runCli(['bundle', definition, '--output', output, '--json', ...mirrors(fast)])
    expect(rerun.error).toBeUndefined()
    expect(rerun.code).toBe(0)
    const verify = await runCli(['verify', output, '--json'])
    expect(verify.error).toBeUndefined()
    expect(verify.code).toBe(0)
    expect(fileSha(output)).toBe(cleanSha)
    // What the journal called done was kept from the finished file, not downloaded again.
    expect(rerun.result.resumed).toBe(true)
    expect(rerun.result.reusedBytes).toBeGreaterThanOrEqual(1_500_000)
    expect(rerun.events.some((e) => e.type === 'log' && e.code === 'W_RESUME_DISCARDED')).toBe(false)
    expect(existsSync(journal)).toBe(false)
    expect(existsSync(`${output}.partial`)).toBe(false)
  })
})
