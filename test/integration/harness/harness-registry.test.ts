import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ImageFormat, type PushedImage, pushImage } from '../../support/images.js'
import {
  type RegistryFlavor,
  registryFetch,
  registryFlavors,
  startRegistry,
  type TestRegistry,
} from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)

async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await run(findTool('skopeo'), ['--insecure-policy', ...args], { maxBuffer: 64 << 20 })
  return stdout
}

/** skopeo's transport flags for reading from a test registry (its CA, its credentials). */
function srcFlags(registry: TestRegistry, prefix = 'src'): string[] {
  const flags = registry.tls
    ? [`--${prefix}-cert-dir`, registry.tls.certDir]
    : [`--${prefix}-tls-verify=false`]
  if (registry.credentials)
    flags.push(`--${prefix}-creds`, `${registry.credentials.username}:${registry.credentials.password}`)
  return flags
}

function inspectFlags(registry: TestRegistry): string[] {
  return srcFlags(registry).map((f) => f.replace('--src-', '--'))
}

const platforms = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
]

describe.each(
  registryFlavors.flatMap((flavor) => [
    { flavor, tls: false, auth: false },
    { flavor, tls: true, auth: true },
  ]),
)(
  'harness registry $flavor (tls=$tls, auth=$auth)',
  ({ flavor, tls, auth }: { flavor: RegistryFlavor; tls: boolean; auth: boolean }) => {
    let registry: TestRegistry
    const pushed: Record<ImageFormat, PushedImage | undefined> = { oci: undefined, docker: undefined }

    beforeAll(async () => {
      registry = await startRegistry({
        flavor,
        tls,
        credentials: auth ? { username: 'tester', password: 'correct horse battery' } : undefined,
      })
      for (const format of ['oci', 'docker'] as const) {
        pushed[format] = await pushImage(registry, {
          repository: `synthetic/${format}-app`,
          tag: 'v1',
          format,
          platforms,
          layers: [
            { seed: 'base-layer', size: 300_000, sharedAcrossPlatforms: true },
            { seed: `${format}-app-layer`, size: 120_000 },
          ],
        })
      }
    })

    afterAll(async () => {
      await registry?.stop()
    })

    it.each(['oci', 'docker'] as const)(
      'serves a %s multi-platform image that skopeo reads back with matching digests',
      async (format) => {
        const image = pushed[format]!
        const ref = `docker://${registry.host}/synthetic/${format}-app:v1`
        const raw = await skopeo(['inspect', '--raw', ...inspectFlags(registry), ref])
        const index = JSON.parse(raw)
        expect(index.mediaType).toBe(image.mediaType)
        expect(index.manifests.map((m: { digest: string }) => m.digest)).toEqual(
          image.manifests.map((m) => m.digest),
        )

        // skopeo resolves each platform to the manifest we pushed.
        for (const manifest of image.manifests) {
          const arch = [`--override-arch`, manifest.platform.architecture]
          if (manifest.platform.variant) arch.push('--override-variant', manifest.platform.variant)
          const info = JSON.parse(await skopeo([...arch, 'inspect', ...inspectFlags(registry), ref]))
          // skopeo names the digest of the reference it was given (the index), and the chosen platform's layers.
          expect(info.Digest).toBe(image.digest)
          expect(info.Architecture).toBe(manifest.platform.architecture)
          expect(info.Layers).toEqual(manifest.layers.map((l) => l.digest))
        }

        // A full copy keeps the index digest and every blob: an OCI layout for OCI images; skopeo's dir: transport for
        // Docker v2 ones (an OCI layout would need a conversion that changes the digests).
        const target = mkdtempSync(join(tmpdir(), 'astrago-copy-'))
        try {
          if (format === 'oci') {
            await skopeo([
              'copy',
              '--all',
              '--preserve-digests',
              ...srcFlags(registry),
              ref,
              `oci:${target}:v1`,
            ])
            const layoutIndex = JSON.parse(readFileSync(join(target, 'index.json'), 'utf8'))
            expect(layoutIndex.manifests[0].digest).toBe(image.digest)
            for (const layer of image.manifests.flatMap((m) => m.layers)) {
              expect(readFileSync(join(target, 'blobs', ...layer.digest.split(':'))).length).toBe(layer.size)
            }
          } else {
            await skopeo(['copy', '--all', '--preserve-digests', ...srcFlags(registry), ref, `dir:${target}`])
            const list = readFileSync(join(target, 'manifest.json'))
            expect(`sha256:${createHash('sha256').update(list).digest('hex')}`).toBe(image.digest)
            for (const layer of image.manifests.flatMap((m) => m.layers)) {
              expect(readFileSync(join(target, layer.digest.split(':')[1]!)).length).toBe(layer.size)
            }
          }
        } finally {
          rmSync(target, { recursive: true, force: true })
        }
      },
    )

    it('stores a layer shared by platforms once', async () => {
      const image = pushed.oci!
      const firstLayers = image.manifests.map((m) => m.layers[0]!.digest)
      const secondLayers = image.manifests.map((m) => m.layers[1]!.digest)
      expect(new Set(firstLayers).size).toBe(1)
      expect(new Set(secondLayers).size).toBe(2)
    })

    if (auth) {
      it('refuses anonymous access', async () => {
        const res = await registryFetch(registry, '/v2/synthetic/oci-app/manifests/v1')
        expect(res.status).toBe(401)
        expect(res.headers.get('www-authenticate')).toMatch(/^Basic /)
        await expect(
          skopeo([
            'inspect',
            '--raw',
            ...(tls ? ['--cert-dir', registry.tls!.certDir] : ['--tls-verify=false']),
            `docker://${registry.host}/synthetic/oci-app:v1`,
          ]),
        ).rejects.toThrow(/unauthorized|authentication required/i)
      })
    }
  },
)
