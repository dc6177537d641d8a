import { describe, expect, it } from 'vitest'
import {
  BUNDLE_ARTIFACT_TYPE,
  type BundleArtifact,
  buildBundleManifest,
  chunkTitle,
  planChunks,
  readBundleArtifact,
} from '../../src/publish/bundle-artifact.js'
import { parseOciAddress } from '../../src/publish/oci-url.js'

// biome-ignore lint/suspicious/noExplicitAny: a manifest document edited freely to make it wrong
type Editable = Record<string, any>

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`

const artifact = (): BundleArtifact => ({
  name: 'astrago',
  version: '1.0.0',
  digest: digest(1),
  size: 25,
  file: 'astrago-1.0.0.tar',
  chunkSize: 10,
  config: { mediaType: 'x', digest: digest(2), size: 7 },
  chunks: planChunks(25, 10).map((c, index) => ({ index, ...c, digest: digest(10 + index) })),
  created: '2026-01-01T00:00:00.000Z',
})

/** The manifest of `artifact()`, edited by `edit`. */
const manifestWith = (edit: (m: Editable) => void): Buffer => {
  const m = JSON.parse(buildBundleManifest(artifact()).toString())
  edit(m)
  return Buffer.from(JSON.stringify(m))
}

describe('bundle artifact', () => {
  it('cuts a file into equal chunks, the last shorter', () => {
    expect(planChunks(25, 10)).toEqual([
      { offset: 0, size: 10 },
      { offset: 10, size: 10 },
      { offset: 20, size: 5 },
    ])
    expect(planChunks(20, 10).length).toBe(2)
    expect(planChunks(3, 10)).toEqual([{ offset: 0, size: 3 }])
  })

  it('titles chunks as split volumes, or as the file when there is one', () => {
    expect(chunkTitle('a.tar', 0, 1)).toBe('a.tar')
    expect(chunkTitle('a.tar', 2, 3)).toBe('a.tar.002')
  })

  it('reads back what it builds, with the same manifest for the same inputs', () => {
    const bytes = buildBundleManifest(artifact())
    expect(buildBundleManifest(artifact()).equals(bytes)).toBe(true)
    const manifest = JSON.parse(bytes.toString())
    expect(manifest.artifactType).toBe(BUNDLE_ARTIFACT_TYPE)
    expect(
      manifest.layers.map(
        (l: { annotations: Record<string, string> }) => l.annotations['org.opencontainers.image.title'],
      ),
    ).toEqual(['astrago-1.0.0.tar.000', 'astrago-1.0.0.tar.001', 'astrago-1.0.0.tar.002'])
    const read = readBundleArtifact(bytes, 'here')
    expect(read).toMatchObject({
      name: 'astrago',
      version: '1.0.0',
      digest: digest(1),
      size: 25,
      chunkSize: 10,
    })
    expect(read.chunks.map((c) => [c.offset, c.size, c.digest])).toEqual([
      [0, 10, digest(10)],
      [10, 10, digest(11)],
      [20, 5, digest(12)],
    ])
  })

  it('records the signer as an annotation when there is one, and reads back only a fingerprint', () => {
    const fingerprint = 'D919B958256765D7AB9BC5648AA5FEFD4FC720BE'
    const signed = buildBundleManifest({ ...artifact(), signer: fingerprint })
    expect(JSON.parse(signed.toString()).annotations['io.astrago.airgap.bundle.signer']).toBe(fingerprint)
    expect(readBundleArtifact(signed, 'here').signer).toBe(fingerprint)
    const unsigned = buildBundleManifest(artifact())
    expect(JSON.parse(unsigned.toString()).annotations).not.toHaveProperty('io.astrago.airgap.bundle.signer')
    expect(readBundleArtifact(unsigned, 'here').signer).toBeUndefined()
    const odd = manifestWith((m) => {
      m.annotations['io.astrago.airgap.bundle.signer'] = 'Release team <release@example.com>'
    })
    expect(readBundleArtifact(odd, 'here').signer).toBeUndefined()
  })

  it.each([
    [
      'another artifact type',
      (m: Editable) => {
        m.artifactType = 'application/vnd.unknown.artifact.v1'
        m.config.mediaType = 'application/vnd.oci.empty.v1+json'
      },
      /artifact type/,
    ],
    [
      'a file name with a path',
      (m: Editable) => {
        m.annotations['io.astrago.airgap.bundle.file'] = '../../etc/passwd'
      },
      /not a plain file name/,
    ],
    [
      'chunks that do not add up to the size',
      (m: Editable) => {
        m.annotations['io.astrago.airgap.bundle.size'] = '26'
      },
      /hold 25 bytes/,
    ],
    [
      'a chunk of the wrong size',
      (m: Editable) => {
        m.layers[1].size = 9
      },
      /layer 1 is 9 bytes/,
    ],
    [
      'a chunk out of place',
      (m: Editable) => {
        m.layers[1].annotations['io.astrago.airgap.bundle.chunk.offset'] = '0'
      },
      /starts at 0, not 10/,
    ],
    [
      'a layer of another type',
      (m: Editable) => {
        m.layers[0].mediaType = 'application/octet-stream'
      },
      /layer 0/,
    ],
    [
      'a digest that is not sha256',
      (m: Editable) => {
        m.annotations['io.astrago.airgap.bundle.digest'] = 'md5:abc'
      },
      /not a sha256 digest/,
    ],
    [
      'a size that is not a number',
      (m: Editable) => {
        m.annotations['io.astrago.airgap.bundle.chunk-size'] = '1e3'
      },
      /not a byte count/,
    ],
  ])('refuses a manifest with %s', (_what, edit, pattern) => {
    expect(() => readBundleArtifact(manifestWith(edit), 'oci://r/x:1')).toThrow(pattern)
  })

  it('refuses a manifest that is not JSON', () => {
    expect(() => readBundleArtifact(Buffer.from('<html>'), 'oci://r/x:1')).toThrow(/not JSON/)
  })
})

describe('oci:// addresses', () => {
  it('reads registry, repository, tag and digest', () => {
    expect(parseOciAddress('oci://harbor.example:443/releases/astrago:1.0.0')).toEqual({
      registry: 'harbor.example:443',
      repository: 'releases/astrago',
      tag: '1.0.0',
    })
    expect(parseOciAddress('oci://localhost/astrago')).toEqual({
      registry: 'localhost',
      repository: 'astrago',
    })
    expect(parseOciAddress(`oci://10.0.0.5:5000/a/b@${digest(3)}`)).toEqual({
      registry: '10.0.0.5:5000',
      repository: 'a/b',
      digest: digest(3),
    })
  })

  it.each([
    ['harbor.example/releases/astrago:1.0.0', /oci:\/\//],
    ['oci://harbor.example', /no repository/],
    ['oci://releases/astrago:1.0.0', /not a registry host/],
    ['oci://harbor.example/Releases/astrago', /lowercase/],
  ])('refuses %s', (input, pattern) => {
    expect(() => parseOciAddress(input)).toThrow(pattern)
  })
})
