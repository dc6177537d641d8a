import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../support/cli.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { pushImage } from '../../support/images.js'
import { freePort, loopbackServe } from '../../support/net.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { startServe, stopServe } from '../../support/serve-process.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

/**
 * A bundle extracted with `tar -xf` into a folder is accepted wherever a bundle file is: verify, inspect, serve (real
 * skopeo and curl), push (into a real registry). A folder whose bundle.json lists an unsafe path, or whose files are
 * symbolic links leading out of it, is refused with E_INTEGRITY naming the member.
 */
describe('bundle folder (tar -xf)', () => {
  let work: string
  let upstream: TestRegistry
  let downloads: FileServer
  let folder: string
  let digest: string
  let tool: Buffer

  /** A fresh copy of the extracted folder to damage. */
  const copyFolder = async (name: string) => {
    const dir = join(work, name)
    await run('cp', ['-a', folder, dir])
    return dir
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-bundle-dir-'))
    upstream = await startRegistry()
    const image = await pushImage(upstream, {
      repository: 'nvcr.io/nvidia/k8s-device-plugin',
      tag: 'v0.17.0',
      layers: [{ seed: 'device-plugin', size: 400_000 }],
    })
    digest = image.digest
    mkdirSync(join(work, 'site', 'tools'), { recursive: true })
    tool = randomBytes(300_000)
    writeFileSync(join(work, 'site', 'tools', 'tool.bin'), tool)
    downloads = await startFileServer(join(work, 'site'))
    const definition = join(work, 'site.yaml')
    writeFileSync(
      definition,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name: 'site', version: '2.0.0' },
        images: ['nvcr.io/nvidia/k8s-device-plugin:v0.17.0'],
        files: [
          { url: 'https://downloads.example.org/tools/tool.bin', sha256: sha256(tool), path: 'bin/tool.bin' },
        ],
      }),
    )
    const res = await runCli([
      'bundle',
      definition,
      '--output-dir',
      work,
      '--json',
      '--mirror',
      `nvcr.io=${upstream.url}/nvcr.io`,
      '--mirror',
      `https://downloads.example.org=${downloads.url}`,
    ])
    expect(res.code, res.stderr).toBe(0)
    folder = join(work, 'extracted')
    mkdirSync(folder)
    await run('tar', ['-xf', res.result.path, '-C', folder])
  })

  afterAll(async () => {
    await Promise.all([upstream?.stop(), downloads?.stop()])
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('verifies (full and quick) and inspects the folder', async () => {
    const full = await runCli(['verify', folder, '--json'])
    expect(full.code, full.stderr).toBe(0)
    expect(full.result).toMatchObject({ name: 'site', version: '2.0.0', mode: 'full' })
    expect(full.result.members).toBeGreaterThan(4)
    const quick = await runCli(['verify', folder, '--quick', '--json'])
    expect(quick.code, quick.stderr).toBe(0)
    expect(quick.result.bytes).toBe(full.result.bytes)
    const inspect = await runCli(['inspect', folder, '--json'])
    expect(inspect.code, inspect.stderr).toBe(0)
    expect(JSON.stringify(inspect.result)).toContain('nvcr.io/nvidia/k8s-device-plugin')
  })

  it('serves the folder: skopeo pulls the image, curl gets a file with a Range', async () => {
    const { server, serving } = await startServe([folder, ...loopbackServe(await freePort())])
    try {
      const certDir = join(work, 'certs')
      mkdirSync(certDir)
      copyFileSync(serving.caFile, join(certDir, 'ca.crt'))
      const skopeo = findTool('skopeo')
      const raw = await run(skopeo, [
        'inspect',
        '--raw',
        '--cert-dir',
        certDir,
        `docker://${serving.registryHost}/nvcr.io/nvidia/k8s-device-plugin:v0.17.0`,
      ])
      expect(`sha256:${sha256(raw.stdout)}`).toBe(digest)
      const pulled = join(work, 'pulled')
      await run(skopeo, [
        'copy',
        '--preserve-digests',
        '--src-cert-dir',
        certDir,
        `docker://${serving.registryHost}/nvcr.io/nvidia/k8s-device-plugin:v0.17.0`,
        `oci:${pulled}:v0.17.0`,
      ])
      const index = JSON.parse(readFileSync(join(pulled, 'index.json'), 'utf8'))
      expect(index.manifests[0].digest).toBe(digest)
      const part = await run(
        'curl',
        ['-fsS', '--cacert', serving.caFile, '-r', '1000-1999', `${serving.url}/files/bin/tool.bin`],
        { encoding: 'buffer' },
      )
      expect(Buffer.compare(part.stdout as unknown as Buffer, tool.subarray(1000, 2000))).toBe(0)
    } finally {
      await stopServe(server)
    }
  })

  it('pushes from the folder into a registry', async () => {
    const res = await runCli([
      'push',
      folder,
      '--registry',
      `http://${upstream.host}`,
      '--prefix',
      'site',
      '--json',
    ])
    expect(res.code, res.stderr).toBe(0)
    expect(res.result.images).toBe(1)
    const raw = await run(findTool('skopeo'), [
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${upstream.host}/site/nvcr.io/nvidia/k8s-device-plugin:v0.17.0`,
    ])
    expect(`sha256:${sha256(raw.stdout)}`).toBe(digest)
  })

  it('names a missing, a short and a damaged member', async () => {
    const missing = await copyFolder('missing')
    rmSync(join(missing, 'files', 'bin', 'tool.bin'))
    const a = await runCli(['verify', missing, '--quick', '--json'])
    expect(a.code).toBe(6)
    expect(a.error?.code).toBe('E_INTEGRITY')
    expect(a.error?.message).toContain('files/bin/tool.bin')

    const short = await copyFolder('short')
    truncateSync(join(short, 'files', 'bin', 'tool.bin'), 1000)
    const b = await runCli(['verify', short, '--quick', '--json'])
    expect(b.code).toBe(6)
    expect(b.error?.message).toContain('files/bin/tool.bin')

    const damaged = await copyFolder('damaged')
    const bytes = Buffer.from(tool)
    bytes[5000] = bytes[5000]! ^ 1
    writeFileSync(join(damaged, 'files', 'bin', 'tool.bin'), bytes)
    const c = await runCli(['verify', damaged, '--json'])
    expect(c.code).toBe(6)
    expect(c.error?.message).toContain('files/bin/tool.bin')
  })

  it('refuses unsafe member paths in a crafted bundle.json', async () => {
    writeFileSync(join(work, 'secret'), 'outside the folder')
    for (const [name, path] of [
      ['dotdot', '../secret'],
      ['absolute', join(work, 'secret')],
      ['backslash', 'files\\..\\..\\secret'],
      ['nul', 'files/a\u0000b'],
    ] as const) {
      const crafted = await copyFolder(`crafted-${name}`)
      const metadata = JSON.parse(readFileSync(join(crafted, 'bundle.json'), 'utf8'))
      metadata.members.push({ path, size: 18, sha256: sha256('outside the folder') })
      // Crafted as an unsigned bundle: with its signature kept, the edited bundle.json would be refused by the
      // signature check first (E_SIGNATURE_INVALID, see bundle-signature.test.ts), before its paths are looked at.
      delete metadata.signature
      rmSync(join(crafted, 'bundle.json.sig'))
      writeFileSync(join(crafted, 'bundle.json'), JSON.stringify(metadata))
      for (const command of ['verify', 'serve']) {
        const args =
          command === 'verify'
            ? ['verify', crafted, '--json']
            : ['serve', crafted, '--json', '--port', '0', '--host', '127.0.0.1', '--insecure']
        const res = await runCli(args)
        expect(res.code, `${name} ${command}: ${res.stderr}`).toBe(6)
        expect(res.error?.code).toBe('E_INTEGRITY')
        expect(res.error?.message).toContain(JSON.stringify(path))
      }
    }
  })

  it('refuses symbolic links that lead out of the folder, file or folder', async () => {
    const outside = join(work, 'outside-tool.bin')
    writeFileSync(outside, tool)
    const linked = await copyFolder('linked-file')
    rmSync(join(linked, 'files', 'bin', 'tool.bin'))
    symlinkSync(outside, join(linked, 'files', 'bin', 'tool.bin'))
    const a = await runCli(['verify', linked, '--json'])
    expect(a.code, a.stderr).toBe(6)
    expect(a.error?.message).toContain('files/bin/tool.bin')

    const outsideDir = join(work, 'outside-bin')
    mkdirSync(outsideDir)
    writeFileSync(join(outsideDir, 'tool.bin'), tool)
    const linkedDir = await copyFolder('linked-dir')
    rmSync(join(linkedDir, 'files', 'bin'), { recursive: true })
    symlinkSync(outsideDir, join(linkedDir, 'files', 'bin'))
    const b = await runCli(['inspect', linkedDir, '--json'])
    expect(b.code, b.stderr).toBe(0) // inspect reads bundle.json only
    const c = await runCli(['verify', linkedDir, '--quick', '--json'])
    expect(c.code).toBe(6)
    expect(c.error?.message).toContain('files/bin/tool.bin')

    // A link that stays inside the folder is fine.
    const inside = await copyFolder('linked-inside')
    const blob = join(inside, 'files', 'bin', 'tool.bin')
    copyFileSync(blob, join(inside, 'files', 'tool-copy.bin'))
    rmSync(blob)
    symlinkSync('../tool-copy.bin', blob)
    const d = await runCli(['verify', inside, '--json'])
    expect(d.code, d.stderr).toBe(0)
  })

  it('a folder without bundle.json is an input error', async () => {
    const empty = join(work, 'empty')
    mkdirSync(empty)
    const res = await runCli(['verify', empty, '--json'])
    expect(res.code).toBe(3)
    expect(res.error?.code).toBe('E_INPUT')
  })
})
