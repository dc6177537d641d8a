/**
 * Hostile bundles for tests: a tiny tar writer that writes any header bytes a test asks for (names with "..", NUL or
 * control characters, negative or huge sizes in ustar and pax headers, duplicate members), and a valid small bundle
 * to start from, with one file member. Each entry of HOSTILE_BUNDLES is one crafted bundle the reader must refuse.
 */
import { createHash } from 'node:crypto'
import { closeSync, openSync, writeSync } from 'node:fs'

export interface RawMember {
  name: string
  data: Buffer | string
  /** The raw 12-byte size field of the ustar header (default: the octal size of data). */
  sizeField?: Buffer
  /** pax records written in an extended header before this member. */
  pax?: Record<string, string>
}

const BLOCK = 512
const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK

function header(name: string, size: number | Buffer, type: string): Buffer {
  const block = Buffer.alloc(BLOCK)
  Buffer.from(name, 'utf8').copy(block, 0, 0, 100)
  block.write('0000644\0', 100, 'latin1')
  block.write('0000000\0', 108, 'latin1')
  block.write('0000000\0', 116, 'latin1')
  if (Buffer.isBuffer(size)) size.copy(block, 124, 0, 12)
  else block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1')
  block.write('00000000000\0', 136, 'latin1')
  block.write('        ', 148, 'latin1')
  block.write(type, 156, 'latin1')
  block.write('ustar\u000000', 257, 'latin1')
  let sum = 0
  for (const b of block) sum += b
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1')
  return block
}

function paxBody(records: Record<string, string>): Buffer {
  let out = ''
  for (const [key, value] of Object.entries(records)) {
    const payload = ` ${key}=${value}\n`
    let length = Buffer.byteLength(payload) + 1
    while (String(length).length + Buffer.byteLength(payload) !== length) length += 1
    out += `${length}${payload}`
  }
  return Buffer.from(out, 'utf8')
}

/** The bytes of a tar holding these members, then the end-of-archive blocks. */
export function buildTar(members: RawMember[]): Buffer {
  const parts: Buffer[] = []
  for (const m of members) {
    const data = Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data)
    if (m.pax) {
      const body = paxBody(m.pax)
      parts.push(header('PaxHeaders/x', body.length, 'x'), body, Buffer.alloc(pad(body.length)))
    }
    parts.push(header(m.name, m.sizeField ?? data.length, '0'), data, Buffer.alloc(pad(data.length)))
  }
  parts.push(Buffer.alloc(2 * BLOCK))
  return Buffer.concat(parts)
}

export const HELLO = 'hello from a small bundle\n'
const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex')

/** bundle.json of a valid bundle holding files/hello.txt. */
// biome-ignore lint/suspicious/noExplicitAny: tests bend bundle.json into any shape
export function validMetadata(): any {
  const size = Buffer.byteLength(HELLO)
  return {
    format: 'astrago-airgap.bundle/v1',
    name: 'hostile',
    version: '1.0.0',
    createdBy: 'astrago-airgap test',
    platforms: ['linux/amd64'],
    images: [],
    charts: [],
    files: [{ url: 'https://files.example/hello.txt', path: 'files/hello.txt', sha256: sha(HELLO), size }],
    stages: [],
    members: [{ path: 'files/hello.txt', size, sha256: sha(HELLO) }],
    totals: { contentBytes: size, imageBytesWithoutDedup: 0, blobBytes: 0 },
  }
}

/** A bundle file: bundle.json (from `metadata`) then `members` (default: files/hello.txt). */
// biome-ignore lint/suspicious/noExplicitAny: see validMetadata
export function bundleBytes(metadata: any = validMetadata(), members?: RawMember[]): Buffer {
  return buildTar([
    { name: 'bundle.json', data: JSON.stringify(metadata) },
    ...(members ?? [{ name: 'files/hello.txt', data: HELLO }]),
  ])
}

function base256(value: bigint): Buffer {
  const field = Buffer.alloc(12)
  let v = value < 0n ? (1n << 96n) + value : value
  for (let i = 11; i >= 0; i--) {
    field[i] = Number(v & 0xffn)
    v >>= 8n
  }
  if (value >= 0n) field[0]! |= 0x80
  return field
}

export interface HostileBundle {
  name: string
  /** Writes the bundle to `file`. */
  write: (file: string) => void
}

const bytesCase = (name: string, bytes: () => Buffer): HostileBundle => ({
  name,
  write: (file) => {
    const fd = openSync(file, 'w')
    try {
      writeSync(fd, bytes())
    } finally {
      closeSync(fd)
    }
  },
})

// biome-ignore lint/suspicious/noExplicitAny: see validMetadata
const metadataCase = (name: string, edit: (m: any) => void): HostileBundle =>
  bytesCase(name, () => {
    const m = validMetadata()
    edit(m)
    return bundleBytes(m)
  })

const chart = (name: string, version: string) => ({
  name,
  version,
  repo: 'https://charts.example',
  sha256: sha(HELLO),
  path: `charts/${name}-${version}.tgz`,
  oci: { repository: `charts/${name}`, tag: version, digest: `sha256:${sha(HELLO)}` },
  images: [],
})

/** Every hostile bundle the reader must refuse (E_INTEGRITY), whatever command opens it. */
export const HOSTILE_BUNDLES: HostileBundle[] = [
  metadataCase('chart name with ../', (m) => m.charts.push(chart('../../../escape-marker', '1.0.0'))),
  metadataCase('chart version with ../', (m) =>
    m.charts.push(chart('web', '1.0.0/../../../../escape-marker')),
  ),
  metadataCase('stage name with ../', (m) => m.stages.push({ name: '../../escape-marker', files: [] })),
  metadataCase('absolute member path in bundle.json', (m) => {
    m.members[0].path = '/tmp/escape-marker'
  }),
  metadataCase('file path with ..', (m) => {
    m.files[0].path = 'files/../../escape-marker'
  }),
  metadataCase(
    'package path with ..',
    (m) =>
      (m.packages = [
        {
          kind: 'apt',
          name: 'ubuntu',
          path: 'repo/apt/ubuntu',
          details: {},
          requested: [],
          metadata: [],
          packages: [
            {
              name: 'x',
              version: '1',
              architecture: 'amd64',
              path: '../../../escape-marker.deb',
              size: 1,
              sha256: sha(HELLO),
              url: 'https://x/x.deb',
            },
          ],
        },
      ]),
  ),
  metadataCase('image name with a shell character', (m) =>
    m.images.push({
      source: 'x',
      name: 'evil.example;touch escape-marker/x',
      digest: `sha256:${sha(HELLO)}`,
      upstreamDigest: `sha256:${sha(HELLO)}`,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      platforms: [],
      manifests: [],
      size: 0,
      from: [],
    }),
  ),
  metadataCase('NUL in a member path of bundle.json', (m) => {
    m.members[0].path = 'files/hello.txt\u0000.sh'
  }),
  metadataCase('control character in a stage file', (m) =>
    m.stages.push({ name: 'core', files: ['manifests/core/a\u001b[2J.yaml'] }),
  ),
  metadataCase('negative size in bundle.json', (m) => {
    m.members[0].size = -5
  }),
  bytesCase('member named ../escape-marker in the tar', () =>
    bundleBytes(validMetadata(), [
      { name: 'files/hello.txt', data: HELLO },
      { name: '../escape-marker', data: 'x' },
    ]),
  ),
  bytesCase('absolute member name in the tar', () =>
    bundleBytes(validMetadata(), [
      { name: 'files/hello.txt', data: HELLO },
      { name: '/tmp/escape-marker', data: 'x' },
    ]),
  ),
  bytesCase('control character in a tar member name', () =>
    bundleBytes(validMetadata(), [
      { name: 'files/hello.txt', data: HELLO },
      { name: 'files/\u0007bell', data: 'x' },
    ]),
  ),
  bytesCase('NUL in a pax path', () =>
    bundleBytes(validMetadata(), [
      { name: 'files/hello.txt', data: HELLO, pax: { path: 'files/hello.txt\u0000../../escape-marker' } },
    ]),
  ),
  bytesCase('duplicate members', () =>
    bundleBytes(validMetadata(), [
      { name: 'files/hello.txt', data: HELLO },
      { name: 'files/hello.txt', data: HELLO },
    ]),
  ),
  bytesCase('negative pax size', () =>
    bundleBytes(validMetadata(), [{ name: 'files/hello.txt', data: HELLO, pax: { size: '-26' } }]),
  ),
  bytesCase('huge pax size', () =>
    bundleBytes(validMetadata(), [
      { name: 'files/hello.txt', data: HELLO, pax: { size: '99999999999999999999999' } },
    ]),
  ),
  bytesCase('non-numeric pax size', () =>
    bundleBytes(validMetadata(), [{ name: 'files/hello.txt', data: HELLO, pax: { size: '1e1' } }]),
  ),
  bytesCase('negative base-256 size in a ustar header', () =>
    bundleBytes(validMetadata(), [{ name: 'files/hello.txt', data: HELLO, sizeField: base256(-1024n) }]),
  ),
  bytesCase('huge base-256 size in a ustar header', () =>
    bundleBytes(validMetadata(), [{ name: 'files/hello.txt', data: HELLO, sizeField: base256(1n << 80n) }]),
  ),
  {
    name: 'bundle.json of 65 MiB',
    write: (file) => {
      // A sparse file: a header claiming 65 MiB of bundle.json, then (zero) bytes up to that size.
      const size = 65 << 20
      const fd = openSync(file, 'w')
      try {
        writeSync(fd, header('bundle.json', size, '0'))
        writeSync(fd, Buffer.alloc(3 * BLOCK), 0, 3 * BLOCK, BLOCK + size)
      } finally {
        closeSync(fd)
      }
    },
  },
]

/** A valid bundle holding one small OCI image, docker.io/test/tiny:1 (config, one layer, manifest), and hello.txt. */
export function imageBundleBytes(): Buffer {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}')
  const layer = Buffer.from('not really a tar layer, but bytes with a digest\n')
  const descriptor = (mediaType: string, bytes: Buffer) => ({
    mediaType,
    digest: `sha256:${sha(bytes)}`,
    size: bytes.length,
  })
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: [descriptor('application/vnd.oci.image.layer.v1.tar', layer)],
    }),
  )
  const blobs = [config, layer, manifest]
  const m = validMetadata()
  m.images.push({
    source: 'docker.io/test/tiny:1',
    name: 'docker.io/test/tiny',
    tag: '1',
    digest: `sha256:${sha(manifest)}`,
    upstreamDigest: `sha256:${sha(manifest)}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    platforms: ['linux/amd64'],
    manifests: [{ digest: `sha256:${sha(manifest)}`, platform: 'linux/amd64', size: manifest.length }],
    size: config.length + layer.length,
    from: ['definition'],
  })
  const members: RawMember[] = [{ name: 'files/hello.txt', data: HELLO }]
  for (const blob of blobs) {
    members.push({ name: `oci/blobs/sha256/${sha(blob)}`, data: blob })
    m.members.push({ path: `oci/blobs/sha256/${sha(blob)}`, size: blob.length, sha256: sha(blob) })
  }
  return bundleBytes(m, members)
}
