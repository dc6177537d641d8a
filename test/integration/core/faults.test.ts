import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFromDefinition } from '../../../src/bundle/bundle-from-definition.js'
import { packageChart } from '../../../src/charts/package-chart.js'
import { AirgapError } from '../../../src/errors.js'
import { silentSink } from '../../../src/events/types.js'
import { pushBundleFile } from '../../../src/push/push-bundle-file.js'
import type { PushResult } from '../../../src/push/push-result.js'
import { createChart } from '../../support/charts.js'
import { FAULT_KINDS, type FaultKind, type FaultProxy, startFaultProxy } from '../../support/fault-proxy.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pseudoRandomBytes, pushImage } from '../../support/images.js'
import { registryFetch, startRegistry, type TestRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const fileSha = (path: string) => sha256(readFileSync(path))

/** Seeds per scenario and the share of requests that get a fault (issue 12: at least 20 seeds at 30%). */
const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1)
const RATE = 0.3

/**
 * The transfer paths under injected network faults: a fault proxy (test/support/fault-proxy.ts) sits in front of a
 * real upstream registry, a real file server (chart repository and downloads) and a real target registry and, at a
 * 30% rate mixed over every kind (resets before headers, 429, 503 with and without Retry-After, bodies cut at a random
 * byte, uploads cut at a random byte, trickled bodies), breaks requests. Over 20 seeds, `bundle` (images, a chart
 * and the image it renders, files) must finish byte-identical to a clean run, and `push` of that bundle must leave
 * the target registry holding the same manifests and blobs as a clean push.
 */
describe('faults', () => {
  let work: string
  let registry: TestRegistry
  let files: FileServer
  let registryProxy: FaultProxy
  let filesProxy: FaultProxy
  let target: TestRegistry
  let targetProxy: FaultProxy
  let definition: string
  let savedCacheHome: string | undefined

  const mirrors = () => ({
    'docker.io': `${registryProxy.url}/docker.io`,
    'charts.example.io': `${registryProxy.url}/charts.example.io`,
    'https://charts.example.org': `${filesProxy.url}/charts`,
    'https://downloads.example.org': `${filesProxy.url}/downloads`,
  })

  const bundleTo = (output: string) =>
    bundleFromDefinition({
      definition,
      output,
      mirrors: mirrors(),
      helm: findTool('helm'),
      toolVersion: 'test',
      sink: silentSink,
    })

  const faultsOn = (seed: number) => {
    registryProxy.configure({ seed: `registry-${seed}`, rate: RATE })
    filesProxy.configure({ seed: `files-${seed}`, rate: RATE })
  }
  const faultsOff = () => {
    registryProxy.configure({ seed: 0, rate: 0 })
    filesProxy.configure({ seed: 0, rate: 0 })
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-faults-it-'))
    registry = await startRegistry({ flavor: 'distribution-v3' })
    const base = { seed: 'faults-base', size: 600_000, sharedAcrossPlatforms: true }
    await pushImage(registry, {
      repository: 'docker.io/library/app',
      tag: '1.0',
      layers: [base, { seed: 'faults-app', size: 300_000 }],
    })
    await pushImage(registry, {
      repository: 'docker.io/library/tool',
      tag: '2.0',
      format: 'docker',
      layers: [base, { seed: 'faults-tool', size: 200_000 }, { seed: 'faults-tool-2', size: 90_000 }],
    })
    const site = join(work, 'site')
    mkdirSync(join(site, 'charts', 'stable'), { recursive: true })
    mkdirSync(join(site, 'downloads'), { recursive: true })
    await createChart(join(site, 'charts', 'stable'), {
      name: 'worker',
      version: '0.1.0',
      images: ['docker.io/library/worker:3.0'],
    })
    rmSync(join(site, 'charts', 'stable', 'worker'), { recursive: true })
    await run(findTool('helm'), ['repo', 'index', join(site, 'charts', 'stable')])
    // A chart in an OCI registry too, pushed there by the real helm.
    const ociChart = await createChart(join(work, 'oci-charts'), {
      name: 'gateway',
      version: '0.2.0',
      images: ['docker.io/library/app:1.0'],
    })
    // helm package stamps the archive with the time, and the proxy picks its faults from the seed and the URL, which
    // names the chart blob's digest: repacked reproducibly, the same seeds cut the same chart requests in every run.
    writeFileSync(ociChart, (await packageChart(join(work, 'oci-charts', 'gateway'))).bytes)
    const helmHome = join(work, 'helm-home')
    await run(
      findTool('helm'),
      ['push', ociChart, `oci://${registry.host}/charts.example.io/charts`, '--plain-http'],
      {
        env: {
          ...process.env,
          HOME: helmHome,
          XDG_CONFIG_HOME: join(helmHome, 'config'),
          XDG_CACHE_HOME: join(helmHome, 'cache'),
          XDG_DATA_HOME: join(helmHome, 'data'),
        },
      },
    )
    await pushImage(registry, {
      repository: 'docker.io/library/worker',
      tag: '3.0',
      layers: [base, { seed: 'faults-worker', size: 150_000 }],
    })
    const downloads = [1_500_000, 400_000, 250_000].map((size, i) => {
      const bytes = Buffer.concat([...pseudoRandomBytes(`faults-file-${i}`, size)])
      writeFileSync(join(site, 'downloads', `file-${i}.bin`), bytes)
      return {
        url: `https://downloads.example.org/file-${i}.bin`,
        sha256: sha256(bytes),
        path: `file-${i}.bin`,
      }
    })
    files = await startFileServer(site)

    registryProxy = await startFaultProxy(registry.url, { seed: 0, rate: 0 })
    filesProxy = await startFaultProxy(files.url, { seed: 0, rate: 0 })
    target = await startRegistry({ flavor: 'distribution-v3' })
    targetProxy = await startFaultProxy(target.url, { seed: 0, rate: 0 })
    // push keeps its upload sessions under $XDG_CACHE_HOME: in this test's folder, not the user's.
    savedCacheHome = process.env.XDG_CACHE_HOME
    process.env.XDG_CACHE_HOME = join(work, 'cache')

    definition = join(work, 'faults.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'faults', version: '1.0.0' },
        platforms: ['linux/amd64'],
        images: ['docker.io/library/app:1.0', 'docker.io/library/tool:2.0'],
        charts: [
          { name: 'worker', version: '0.1.0', repo: 'https://charts.example.org/stable' },
          { name: 'gateway', version: '0.2.0', repo: 'oci://charts.example.io/charts' },
        ],
        files: downloads,
      }),
    )
  })

  afterAll(async () => {
    if (savedCacheHome === undefined) delete process.env.XDG_CACHE_HOME
    else process.env.XDG_CACHE_HOME = savedCacheHome
    await targetProxy?.stop()
    await target?.stop()
    await registryProxy?.stop()
    await filesProxy?.stop()
    await files?.stop()
    await registry?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  let clean: string
  let cleanSha: string

  it('a clean run through the proxies (no faults) gives the reference bundle', async () => {
    faultsOff()
    clean = join(work, 'clean.tar')
    const result = await bundleTo(clean)
    expect(result).toMatchObject({ images: 3, charts: 2, files: 3 })
    cleanSha = fileSha(clean)
    expect(registryProxy.counts.pass).toBeGreaterThan(5)
    expect(filesProxy.counts.pass).toBeGreaterThan(2)
  })

  it(`bundle finishes byte-identical over ${SEEDS.length} seeds at a ${RATE * 100}% fault rate of every kind`, async () => {
    const totals: Record<string, number> = {}
    const failures: string[] = []
    for (const seed of SEEDS) {
      faultsOn(seed)
      const output = join(work, `seed-${seed}.tar`)
      try {
        await bundleTo(output)
        const actual = fileSha(output)
        if (actual !== cleanSha) failures.push(`seed ${seed}: sha256 ${actual}, not the clean ${cleanSha}`)
      } catch (error) {
        const code = error instanceof AirgapError ? error.code : 'no code'
        failures.push(`seed ${seed}: ${code} ${(error as Error).message}`)
      }
      const injected = [...registryProxy.events, ...filesProxy.events]
      if (!injected.some((e) => e.kind !== 'trickle'))
        failures.push(`seed ${seed}: no failing fault injected`)
      for (const event of injected) totals[event.kind] = (totals[event.kind] ?? 0) + 1
      totals.cutBlob = (totals.cutBlob ?? 0) + registryProxy.events.filter((e) => isCutBlob(e)).length
      totals.cutFile = (totals.cutFile ?? 0) + filesProxy.events.filter((e) => isCutFile(e)).length
      totals.cutChart = (totals.cutChart ?? 0) + filesProxy.events.filter((e) => isCutChart(e)).length
      rmSync(output, { force: true })
    }
    expect(failures).toEqual([])
    // Every kind really happened, and bodies were cut where it matters: registry blobs and the file.
    for (const kind of FAULT_KINDS) expect(totals[kind], kind).toBeGreaterThan(0)
    expect(totals.cutBlob).toBeGreaterThanOrEqual(SEEDS.length / 4)
    expect(totals.cutFile).toBeGreaterThan(0)
    expect(totals.cutChart).toBeGreaterThan(0)
  })

  it('bundle finishes byte-identical when every body is cut twice before it gets through', async () => {
    // The seeds above cut where their dice fall; here every response body is cut, at a random byte, twice in a row
    // (the proxy then lets the request through): every blob, the OCI chart's included, every file and chart download.
    registryProxy.configure({ seed: 'cut-all', rate: 1, kinds: ['cut'], maxInARow: 2 })
    filesProxy.configure({ seed: 'cut-all', rate: 1, kinds: ['cut'], maxInARow: 2 })
    const output = join(work, 'cut-all.tar')
    try {
      await bundleTo(output)
      expect(fileSha(output)).toBe(cleanSha)
      const cutOciChart = registryProxy.events.filter(
        (e) => isCutBlob(e) && e.path.startsWith('/v2/charts.example.io/'),
      )
      expect(cutOciChart.length).toBeGreaterThanOrEqual(2)
      expect(registryProxy.events.filter((e) => isCutBlob(e)).length).toBeGreaterThanOrEqual(10)
      expect(filesProxy.events.filter((e) => isCutFile(e)).length).toBeGreaterThan(0)
      expect(filesProxy.events.filter((e) => isCutChart(e)).length).toBeGreaterThan(0)
    } finally {
      faultsOff()
      rmSync(output, { force: true })
    }
  })

  /** Pushes the clean bundle through the target's fault proxy under `prefix`. */
  const pushClean = (prefix: string) =>
    pushBundleFile({
      bundle: clean,
      registry: targetProxy.url,
      prefix,
      toolVersion: 'test',
      sink: silentSink,
    })

  /**
   * What the target registry holds under `prefix`, read directly (not through the proxy): every pushed tag's manifest
   * by its sha256, and every blob and child manifest it names present.
   */
  const readBack = async (result: PushResult, prefix: string) => {
    const seen: string[] = []
    const accept =
      'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'
    const manifest = async (repository: string, reference: string) => {
      const res = await registryFetch(target, `/v2/${repository}/manifests/${reference}`, {
        headers: { accept },
      })
      expect(res.status, `${repository}:${reference}`).toBe(200)
      return Buffer.from(await res.arrayBuffer())
    }
    for (const artifact of result.artifacts) {
      const path = artifact.reference.slice(artifact.reference.indexOf('/') + 1)
      expect(path.startsWith(`${prefix}/`), path).toBe(true)
      const at = path.lastIndexOf(':')
      const repository = path.slice(0, at)
      const bytes = await manifest(repository, path.slice(at + 1))
      expect(`sha256:${sha256(bytes)}`, path).toBe(artifact.digest)
      const queue = [bytes]
      while (queue.length) {
        const doc = JSON.parse(queue.pop()!.toString('utf8')) as {
          manifests?: { digest: string }[]
          config?: { digest: string }
          layers?: { digest: string }[]
        }
        for (const child of doc.manifests ?? []) {
          const childBytes = await manifest(repository, child.digest)
          expect(`sha256:${sha256(childBytes)}`).toBe(child.digest)
          queue.push(childBytes)
        }
        for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
          const res = await registryFetch(target, `/v2/${repository}/blobs/${blob.digest}`, {
            method: 'HEAD',
          })
          expect(res.status, `${repository} ${blob.digest}`).toBe(200)
          seen.push(blob.digest)
        }
      }
    }
    return { artifacts: result.artifacts.map((a) => `${a.source} ${a.digest}`).sort(), blobs: seen.sort() }
  }

  let cleanPush: { artifacts: string[]; blobs: string[] }

  it('a clean push through the proxy gives the reference registry content', async () => {
    targetProxy.configure({ seed: 0, rate: 0 })
    const result = await pushClean('clean')
    expect(result).toMatchObject({ images: 3, charts: 2 })
    cleanPush = await readBack(result, 'clean')
    expect(cleanPush.blobs.length).toBeGreaterThan(5)
  })

  it(`push finishes with the same registry content over ${SEEDS.length} seeds at a ${RATE * 100}% fault rate`, async () => {
    const totals: Record<string, number> = {}
    const failures: string[] = []
    for (const seed of SEEDS) {
      targetProxy.configure({ seed: `push-${seed}`, rate: RATE })
      const prefix = `seed-${seed}`
      try {
        const result = await pushClean(prefix)
        expect(await readBack(result, prefix)).toEqual(cleanPush)
      } catch (error) {
        const code = error instanceof AirgapError ? error.code : 'no code'
        failures.push(`seed ${seed}: ${code} ${(error as Error).message}`)
      }
      if (!targetProxy.events.some((e) => e.kind !== 'trickle'))
        failures.push(`seed ${seed}: no failing fault`)
      for (const event of targetProxy.events) totals[event.kind] = (totals[event.kind] ?? 0) + 1
      const writes = targetProxy.events.filter((e) => e.method !== 'GET' && e.method !== 'HEAD')
      totals.onWrites = (totals.onWrites ?? 0) + writes.length
      totals.uploadCut = (totals.uploadCut ?? 0) + writes.filter((e) => e.kind === 'cut').length
    }
    expect(failures).toEqual([])
    for (const kind of FAULT_KINDS) expect(totals[kind], kind).toBeGreaterThan(0)
    // Uploads (POST, PATCH, PUT) met faults too, not only the checks.
    expect(totals.onWrites).toBeGreaterThan(SEEDS.length / 2)
    expect(totals.uploadCut).toBeGreaterThan(0)
  })
})

describe('a digest mismatch after a resume', () => {
  let work: string
  const body = Buffer.concat([...pseudoRandomBytes('lying-upstream', 3_000_000)])
  const cutAt = 2_500_000

  /**
   * A real upstream that cuts each full download at `cutAt` bytes and answers the Range request that resumes it with
   * other bytes: the first time only (`lies: 1`), or every time.
   */
  const startLyingServer = async (lies: number) => {
    const requests: string[] = []
    let lied = 0
    const server: Server = createServer((req, res) => {
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
      const from = range ? Number(range[1]) : 0
      requests.push(`${req.method} ${from}`)
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' }).end()
        return
      }
      if (from === 0) {
        res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' })
        if (lied < lies) res.write(body.subarray(0, cutAt), () => res.socket?.destroy())
        else res.end(body)
        return
      }
      const rest = Buffer.from(body.subarray(from))
      if (lied < lies) {
        lied += 1
        rest[rest.length >> 1]! ^= 0xff
      }
      res
        .writeHead(206, {
          'content-length': rest.length,
          'content-range': `bytes ${from}-${body.length - 1}/${body.length}`,
        })
        .end(rest)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
    const stop = () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    return { url, requests, stop }
  }

  const bundleFrom = async (url: string, output: string) => {
    const definition = join(work, 'lying.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'lying', version: '1.0.0' },
        files: [{ url: 'https://downloads.example.org/blob.bin', sha256: sha256(body), path: 'blob.bin' }],
      }),
    )
    return await bundleFromDefinition({
      definition,
      output,
      mirrors: { 'https://downloads.example.org': url },
      toolVersion: 'test',
      sink: silentSink,
    })
  }

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'astrago-faults-lying-'))
  })
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('fetches the member once more from byte 0, and succeeds when that copy is right', async () => {
    const server = await startLyingServer(1)
    try {
      const output = join(work, 'once.tar')
      await bundleFrom(server.url, output)
      // The cut download, its resume (the other bytes), then the whole member again.
      // The cut download, its resume (which brought the other bytes), then the whole member again from byte 0.
      expect(gets(server.requests)).toEqual(['from 0', 'resumed', 'from 0'])
      const extracted = await run('tar', ['-xOf', output, 'files/blob.bin'], {
        encoding: 'buffer',
        maxBuffer: 1 << 24,
      })
      expect(sha256(extracted.stdout as Buffer)).toBe(sha256(body))
    } finally {
      await server.stop()
    }
  })

  it('fails with E_INTEGRITY when the copy from byte 0 does not match either, after one restart only', async () => {
    const server = await startLyingServer(Number.POSITIVE_INFINITY)
    try {
      const error = await bundleFrom(server.url, join(work, 'always.tar')).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(AirgapError)
      expect((error as AirgapError).code).toBe('E_INTEGRITY')
      expect((error as AirgapError).message).toMatch(/does not match its digest/)
      expect(gets(server.requests)).toEqual(['from 0', 'resumed', 'from 0', 'resumed'])
    } finally {
      await server.stop()
    }
  })
})

/** GET requests of a log of `METHOD offset` lines, as `from 0` or `resumed`. */
const gets = (requests: string[]) =>
  requests.filter((r) => r.startsWith('GET ')).map((r) => (r === 'GET 0' ? 'from 0' : 'resumed'))

const isCutBlob = (e: { kind: FaultKind; path: string; method: string }) =>
  e.kind === 'cut' && e.method === 'GET' && /\/blobs\/sha256:/.test(e.path)
const isCutFile = (e: { kind: FaultKind; path: string; method: string }) =>
  e.kind === 'cut' && e.method === 'GET' && e.path.startsWith('/downloads/')
const isCutChart = (e: { kind: FaultKind; path: string; method: string }) =>
  e.kind === 'cut' && e.method === 'GET' && e.path.startsWith('/charts/')
