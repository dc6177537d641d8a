import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFromDefinition } from '../../../src/bundle/bundle-from-definition.js'
import { AirgapError } from '../../../src/errors.js'
import { silentSink } from '../../../src/events/types.js'
import { publishBundle } from '../../../src/publish/publish-bundle.js'
import { pullBundle } from '../../../src/publish/pull-bundle.js'
import { FAULT_KINDS, type FaultProxy, startFaultProxy } from '../../support/fault-proxy.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pseudoRandomBytes } from '../../support/images.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** Seeds, and the share of requests that get a fault (as the other fault tests: issue 12). */
const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1)
const RATE = 0.3
const CHUNK = 1 << 20

/**
 * `publish` and `pull` through the fault proxy (test/support/fault-proxy.ts) in front of a real distribution v3: at a
 * 30% rate over every kind of fault (resets before headers, 429, 503, bodies and uploads cut at a random byte,
 * trickled bodies), each seed publishes the same bundle in 1 MiB chunks to its own repository and pulls it back. Every
 * run must finish with the bundle's exact bytes.
 */
describe('publish and pull under faults', () => {
  let work: string
  let files: FileServer
  let registry: TestRegistry
  let proxy: FaultProxy
  let bundlePath: string
  let bundleSha: string

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-publish-faults-'))
    const payload = Buffer.concat([...pseudoRandomBytes('publish-faults', 6 << 20)])
    const site = join(work, 'site')
    mkdirSync(site, { recursive: true })
    writeFileSync(join(site, 'payload.bin'), payload)
    files = await startFileServer(site)
    const definition = join(work, 'release.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'release', version: '2.0.0' },
        files: [
          { url: 'https://downloads.example.org/payload.bin', sha256: sha256(payload), path: 'payload.bin' },
        ],
      }),
    )
    const bundled = await bundleFromDefinition({
      definition,
      output: join(work, 'release-2.0.0.tar'),
      mirrors: { 'https://downloads.example.org': files.url },
      toolVersion: 'test',
      sink: silentSink,
    })
    bundlePath = bundled.path
    bundleSha = sha256(readFileSync(bundlePath))
    registry = await startRegistry({ flavor: 'distribution-v3' })
    proxy = await startFaultProxy(registry.url, { seed: 0, rate: 0 })
  })

  afterAll(async () => {
    await proxy?.stop()
    await registry?.stop()
    await files?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it(`publish and pull finish byte-identical over ${SEEDS.length} seeds at a ${RATE * 100}% fault rate`, async () => {
    const failures: string[] = []
    const totals: Record<string, number> = {}
    const common = {
      insecureRegistries: [proxy.host],
      toolVersion: 'test',
      sink: silentSink,
      cacheDir: join(work, 'cache'),
    }
    for (const seed of SEEDS) {
      proxy.configure({ seed: `publish-${seed}`, rate: RATE })
      const reference = `oci://${proxy.host}/seed-${seed}/release:2.0.0`
      try {
        const published = await publishBundle({
          ...common,
          bundle: bundlePath,
          target: reference,
          chunkSize: CHUNK,
        })
        expect(published.bundleDigest).toBe(`sha256:${bundleSha}`)
        const pulled = await pullBundle({
          source: reference,
          outputDir: join(work, `seed-${seed}`),
          insecureRegistries: [proxy.host],
          toolVersion: 'test',
          sink: silentSink,
        })
        const actual = sha256(readFileSync(pulled.path))
        if (actual !== bundleSha) failures.push(`seed ${seed}: pulled sha256 ${actual}, not ${bundleSha}`)
      } catch (error) {
        const code = error instanceof AirgapError ? error.code : 'no code'
        failures.push(`seed ${seed}: ${code} ${(error as Error).message}`)
      }
      if (!proxy.events.some((e) => e.kind !== 'trickle')) failures.push(`seed ${seed}: no failing fault`)
      for (const event of proxy.events) totals[event.kind] = (totals[event.kind] ?? 0) + 1
      totals.onBlobGets =
        (totals.onBlobGets ?? 0) +
        proxy.events.filter((e) => e.method === 'GET' && e.path.includes('/blobs/')).length
      totals.onUploads =
        (totals.onUploads ?? 0) +
        proxy.events.filter((e) => e.method === 'PUT' || e.method === 'PATCH').length
    }
    expect(failures).toEqual([])
    for (const kind of FAULT_KINDS) expect(totals[kind], kind).toBeGreaterThan(0)
    // Both directions met faults: chunk uploads and chunk downloads.
    expect(totals.onUploads).toBeGreaterThan(SEEDS.length / 2)
    expect(totals.onBlobGets).toBeGreaterThan(SEEDS.length / 2)
  })
})
