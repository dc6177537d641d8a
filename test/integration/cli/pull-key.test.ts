import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AptSigningKey,
  exportPublicKey,
  generateAptSigningKey,
  stopGpgAgent,
} from '../../../src/packages/apt-signature.js'
import { type CliResult, runCli } from '../../support/cli.js'
import { type CountingProxy, startCountingProxy } from '../../support/counting-proxy.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const CHUNK = 1 << 20
/** The --json error with its data (what was downloaded before the pull stopped). */
const errorData = (res: CliResult) => (res.error as { data?: Record<string, unknown> } | undefined)?.data

/**
 * `pull --key` and the signer annotation of `publish`, against a real registry (distribution v3) behind a counting
 * proxy, with bundles made and signed by the real CLI with keys made by real gpg: small bundles (about 3 MiB) in
 * 1 MiB chunks, so a pull that stops at the signature is told apart from one that downloads everything.
 */
describe('pull --key', () => {
  let work: string
  let files: FileServer
  let registry: TestRegistry
  let proxy: CountingProxy
  let release: AptSigningKey
  let other: AptSigningKey
  let releaseKey: string
  let otherKey: string
  let signedPath: string
  let unsignedPath: string
  let signedBytes: Buffer

  const chunks = () => Math.ceil(signedBytes.length / CHUNK)
  const env = () => ({ XDG_CACHE_HOME: join(work, 'cache') })
  const pull = (ref: string, outputDir: string, extra: string[] = []) =>
    runCli(
      [
        'pull',
        `oci://${proxy.host}/${ref}`,
        '--output-dir',
        outputDir,
        '--insecure-registry',
        proxy.host,
        '-j',
        '4',
        '--json',
        ...extra,
      ],
      { env: env() },
    )
  /** What came from the registry through the proxy while `fn` ran. */
  const received = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const before = proxy.downstreamBytes
    const result = await fn()
    return [result, proxy.downstreamBytes - before]
  }
  const signatureTasks = (res: CliResult) =>
    res.events.filter((e) => e.type === 'task.start' && e.kind === 'pull.signature')

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-pull-key-it-'))
    mkdirSync(join(work, 'site'))
    const payload = randomBytes(3 << 20)
    writeFileSync(join(work, 'site', 'payload.bin'), payload)
    files = await startFileServer(join(work, 'site'))
    const created = new Date('2026-01-02T03:04:05Z')
    release = await generateAptSigningKey({
      homeDir: join(work, 'release-key'),
      userId: 'Release team <release@astrago.invalid>',
      created,
    })
    other = await generateAptSigningKey({
      homeDir: join(work, 'other-key'),
      userId: 'Someone else <else@astrago.invalid>',
      created,
    })
    releaseKey = join(work, 'release.asc')
    writeFileSync(releaseKey, await exportPublicKey(release, true))
    otherKey = join(work, 'other.gpg')
    writeFileSync(otherKey, await exportPublicKey(other))
    const definition = join(work, 'release.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'release', version: '1.0.0' },
        files: [
          {
            url: 'https://downloads.example.org/payload.bin',
            sha256: sha256(payload).slice(7),
            path: 'payload.bin',
          },
        ],
      }),
    )
    const bundle = async (out: string, ...extra: string[]) => {
      const res = await runCli([
        'bundle',
        definition,
        '--output-dir',
        join(work, out),
        '--json',
        '--no-installer',
        '--mirror',
        `https://downloads.example.org=${files.url}`,
        ...extra,
      ])
      expect(res.error).toBeUndefined()
      return res.result.path as string
    }
    signedPath = await bundle('signed', '--signing-key', release.homeDir)
    unsignedPath = await bundle('unsigned', '--no-sign')
    signedBytes = readFileSync(signedPath)
    expect(chunks()).toBeGreaterThanOrEqual(3)

    registry = await startRegistry({ flavor: 'distribution-v3' })
    proxy = await startCountingProxy(registry.host, {})
    for (const [path, tag] of [
      [signedPath, 'signed'],
      [unsignedPath, 'unsigned'],
    ] as const) {
      const res = await runCli(
        [
          'publish',
          path,
          `oci://${registry.host}/releases/release:${tag}`,
          '--chunk-size',
          '1M',
          '--insecure-registry',
          registry.host,
          '--json',
        ],
        { env: env() },
      )
      expect(res.error).toBeUndefined()
      expect(res.result.signer).toBe(tag === 'signed' ? release.fingerprint : undefined)
    }
  })

  afterAll(async () => {
    if (release) await stopGpgAgent(release.homeDir)
    if (other) await stopGpgAgent(other.homeDir)
    await proxy?.stop()
    await registry?.stop()
    await files?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('publish records the signer as an annotation, the fingerprint inspect shows; none for an unsigned bundle', async () => {
    const inspect = await runCli(['inspect', signedPath, '--json'])
    expect(inspect.result.signature.signer).toBe(release.fingerprint)
    const manifest = async (tag: string) =>
      JSON.parse(
        (
          await run(findTool('oras'), [
            'manifest',
            'fetch',
            '--plain-http',
            `${registry.host}/releases/release:${tag}`,
          ])
        ).stdout,
      ) as { annotations: Record<string, string> }
    expect((await manifest('signed')).annotations['io.astrago.airgap.bundle.signer']).toBe(
      inspect.result.signature.signer,
    )
    expect((await manifest('unsigned')).annotations).not.toHaveProperty('io.astrago.airgap.bundle.signer')
  })

  it('with the release key: pulled, checked on the first chunk and on the file, and reported as trusted', async () => {
    const out = join(work, 'trusted')
    const res = await pull('releases/release:signed', out, ['--key', releaseKey])
    expect(res.error).toBeUndefined()
    expect(res.result).toMatchObject({
      status: 'pulled',
      chunksDownloaded: chunks(),
      signature: { signed: true, fingerprint: release.fingerprint, trusted: true },
      publishedSigner: release.fingerprint,
    })
    expect(readFileSync(res.result.path).equals(signedBytes)).toBe(true)
    expect(readdirSync(out)).toEqual(['release-1.0.0.tar'])
    // The first check saw only the first chunk; the second the whole file.
    expect(signatureTasks(res).map((e) => (e.data as { chunks: number }).chunks)).toEqual([1, chunks()])
    expect(res.events.some((e) => e.code === 'W_PULL_SIGNER_MISMATCH')).toBe(false)

    const text = await runCli(
      [
        'pull',
        `oci://${proxy.host}/releases/release:signed`,
        '-o',
        out,
        '--insecure-registry',
        proxy.host,
        '--key',
        releaseKey,
      ],
      { env: env() },
    )
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain(`signed by ${release.fingerprint}, a trusted key (--key)`)
  })

  it('with another key: E_SIGNATURE_UNTRUSTED after the first chunk; the bytes kept, and a rerun with the right key finishes', async () => {
    const out = join(work, 'untrusted')
    const [res, bytes] = await received(() => pull('releases/release:signed', out, ['--key', otherKey]))
    expect(res.code).toBe(11)
    expect(res.error?.code).toBe('E_SIGNATURE_UNTRUSTED')
    expect(errorData(res)).toMatchObject({ chunksDownloaded: 1, bytesDownloaded: CHUNK })
    // On the wire: the manifest and one chunk, not the rest of the bundle.
    expect(bytes).toBeGreaterThanOrEqual(CHUNK)
    expect(bytes).toBeLessThan(CHUNK + (64 << 10))
    expect(res.error?.hints.join('\n')).toContain('are kept: their bytes match the published digests')
    // Nothing under the final name.
    expect(readdirSync(out).sort()).toEqual(['release-1.0.0.tar.partial', 'release-1.0.0.tar.pull.json'])

    // The same key again: refused at once from the chunk on disk, nothing downloaded.
    const [again, againBytes] = await received(() =>
      pull('releases/release:signed', out, ['--key', otherKey]),
    )
    expect(again.error?.code).toBe('E_SIGNATURE_UNTRUSTED')
    expect(errorData(again)).toMatchObject({ chunksDownloaded: 0, bytesDownloaded: 0 })
    expect(againBytes).toBeLessThan(64 << 10)

    // The right key (among others): only the chunks not yet there.
    const [fixed, fixedBytes] = await received(() =>
      pull('releases/release:signed', out, ['--key', otherKey, '--key', releaseKey]),
    )
    expect(fixed.error).toBeUndefined()
    expect(fixed.result).toMatchObject({ status: 'pulled', chunksDownloaded: chunks() - 1 })
    expect(fixed.result.signature).toEqual({ signed: true, fingerprint: release.fingerprint, trusted: true })
    expect(fixedBytes).toBeLessThan(signedBytes.length - CHUNK + (64 << 10))
    expect(readdirSync(out)).toEqual(['release-1.0.0.tar'])
    expect(readFileSync(join(out, 'release-1.0.0.tar')).equals(signedBytes)).toBe(true)
  })

  it('a file already there is checked too: another key fails and leaves it; the release key keeps it', async () => {
    const out = join(work, 'present')
    const first = await pull('releases/release:signed', out)
    expect(first.result.signature).toEqual({ signed: true, fingerprint: release.fingerprint, trusted: false })
    const [res, bytes] = await received(() => pull('releases/release:signed', out, ['--key', otherKey]))
    expect(res.error?.code).toBe('E_SIGNATURE_UNTRUSTED')
    expect(res.error?.hints.join('\n')).toContain('was already there and is left as it is')
    expect(bytes).toBeLessThan(64 << 10)
    expect(readdirSync(out)).toEqual(['release-1.0.0.tar'])
    const trusted = await pull('releases/release:signed', out, ['--key', releaseKey])
    expect(trusted.result).toMatchObject({
      status: 'present',
      bytesDownloaded: 0,
      signature: { signed: true, fingerprint: release.fingerprint, trusted: true },
    })
  })

  it('an unsigned bundle: E_SIGNATURE_MISSING with --key after the first chunk; without --key it pulls with a warning', async () => {
    const out = join(work, 'pull-unsigned')
    const [res, bytes] = await received(() => pull('releases/release:unsigned', out, ['--key', releaseKey]))
    expect(res.code).toBe(10)
    expect(res.error?.code).toBe('E_SIGNATURE_MISSING')
    expect(errorData(res)).toMatchObject({ chunksDownloaded: 1 })
    expect(bytes).toBeLessThan(CHUNK + (64 << 10))
    expect(existsSync(join(out, 'release-1.0.0.tar'))).toBe(false)

    const plain = await pull('releases/release:unsigned', out)
    expect(plain.error).toBeUndefined()
    expect(plain.result).toMatchObject({ status: 'pulled', signature: { signed: false, trusted: false } })
    expect(plain.result.publishedSigner).toBeUndefined()
    // Without --key, checked once, on the finished file (the chunks download in parallel as before), and said once.
    expect(signatureTasks(plain).map((e) => (e.data as { chunks: number; keys: number }).keys)).toEqual([0])
    expect(plain.events.filter((e) => e.code === 'W_BUNDLE_UNSIGNED').length).toBe(1)
    expect(readFileSync(plain.result.path).equals(readFileSync(unsignedPath))).toBe(true)
  })

  it('refuses a --key file that does not exist before downloading anything', async () => {
    const [res, bytes] = await received(() =>
      pull('releases/release:signed', join(work, 'nokey'), ['--key', join(work, 'missing.asc')]),
    )
    expect(res.error?.code).toBe('E_INPUT')
    expect(bytes).toBe(0)
    expect(existsSync(join(work, 'nokey'))).toBe(false)
  })

  it('publish refuses a bundle whose bundle.json no longer matches its signature', async () => {
    const bytes = Buffer.from(signedBytes)
    const at = bytes.indexOf('"release"')
    bytes.write('"relea5e"', at)
    const tampered = join(work, 'tampered.tar')
    writeFileSync(tampered, bytes)
    const res = await runCli(
      [
        'publish',
        tampered,
        `oci://${registry.host}/releases/tampered:1`,
        '--chunk-size',
        '1M',
        '--insecure-registry',
        registry.host,
        '--json',
      ],
      { env: env() },
    )
    expect(res.code).toBe(12)
    expect(res.error?.code).toBe('E_SIGNATURE_INVALID')
  })
})
