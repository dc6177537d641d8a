import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createChart } from './charts.js'
import { runCli } from './cli.js'
import { type FileServer, startFileServer } from './file-server.js'
import { type PushedImage, pushImage } from './images.js'
import { startRegistry, type TestRegistry } from './registry.js'
import { findTool } from './tools.js'

const run = promisify(execFile)

/**
 * What a release team's upstream looks like, for the signing and diff tests: a real distribution registry holding
 * synthetic images under their upstream names, and an HTTP server standing in for a chart repository and a download
 * site, reached through --mirror. Tests push more images, add charts and files, then bundle definitions with `bundle`.
 */
export interface ReleaseFixture {
  work: string
  registry: TestRegistry
  server: FileServer
  /** The folder the file server serves: charts/<repo>/, downloads/. */
  site: string
  /** The --helm and --mirror flags that route every upstream to the fixture. */
  mirrors(): string[]
  push(repository: string, tag: string, seed: string, size?: number): Promise<PushedImage>
  /** Writes a chart into the `stable` repository and reindexes it. */
  chart(name: string, version: string, images: string[]): Promise<void>
  /** Writes a download file and returns its sha256. */
  download(name: string, content: Buffer | string): string
  /** Writes a bundle definition (JSON is YAML) and returns its path. */
  definition(file: string, body: Record<string, unknown>): string
  /** Runs `bundle … --json` with the mirrors; throws with its stderr when it fails. */
  bundle(definition: string, output: string, ...extra: string[]): Promise<string>
  stop(): Promise<void>
}

export async function startReleaseFixture(prefix: string): Promise<ReleaseFixture> {
  const work = mkdtempSync(join(tmpdir(), `astrago-${prefix}-`))
  const site = join(work, 'site')
  mkdirSync(join(site, 'charts', 'stable'), { recursive: true })
  mkdirSync(join(site, 'downloads'), { recursive: true })
  const registry = await startRegistry({ flavor: 'distribution-v3' })
  const server = await startFileServer(site)
  const fixture: ReleaseFixture = {
    work,
    registry,
    server,
    site,
    mirrors: () => [
      '--helm',
      findTool('helm'),
      '--mirror',
      `docker.io=${registry.url}/docker.io`,
      '--mirror',
      `quay.io=${registry.url}/quay.io`,
      '--mirror',
      `https://charts.example.org=${server.url}/charts`,
      '--mirror',
      `https://downloads.example.org=${server.url}/downloads`,
    ],
    push: (repository, tag, seed, size = 200_000) =>
      pushImage(registry, {
        repository,
        tag,
        layers: [
          { seed: 'release-base', size: 300_000 },
          { seed, size },
        ],
      }),
    async chart(name, version, images) {
      const dir = join(site, 'charts', 'stable')
      await createChart(dir, { name, version, images })
      rmSync(join(dir, name), { recursive: true })
      await run(findTool('helm'), ['repo', 'index', dir])
    },
    download(name, content) {
      const bytes = Buffer.from(content)
      writeFileSync(join(site, 'downloads', name), bytes)
      return createHash('sha256').update(bytes).digest('hex')
    },
    definition(file, body) {
      const path = join(work, file)
      writeFileSync(
        path,
        JSON.stringify({ apiVersion: 'airgap.astrago.io/v1alpha1', kind: 'Bundle', ...body }, null, 2),
      )
      return path
    },
    async bundle(definition, output, ...extra) {
      const res = await runCli([
        'bundle',
        definition,
        '--output',
        output,
        '--json',
        ...fixture.mirrors(),
        ...extra,
      ])
      if (res.code !== 0)
        throw new Error(`bundle ${definition} failed (${res.code}): ${res.stderr}${res.stdout}`)
      return res.result.path as string
    },
    async stop() {
      await server.stop()
      await registry.stop()
      rmSync(work, { recursive: true, force: true })
    },
  }
  return fixture
}
