import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { VolumeSet } from '../../src/bundle/volumes.js'
import { removeLeftTemporaries, replaceFile, temporaryOf } from '../../src/fs/replace-file.js'
import { hashChunks } from '../../src/publish/hash-chunks.js'
import { UploadSessions } from '../../src/push/upload-sessions.js'
import { writePullRegistry } from '../../src/serve/pull-registry.js'
import { RegistryOverlay } from '../../src/serve/registry-overlay.js'
import { CA_CERT_FILE, loadOrCreateSiteCa } from '../../src/serve/site-ca.js'
import { installServeService } from '../../src/serve/systemd-service.js'
import { SERVE_UNIT_NAME } from '../../src/serve/systemd-unit.js'
import { endedProcessId } from '../support/process.js'

/**
 * State files are replaced through `<file>.<pid>.tmp`; a run killed -9 between the write and the rename leaves that
 * temporary behind. Each owner of such a file removes the temporaries of ended processes when it opens the file again.
 */
const work = mkdtempSync(join(tmpdir(), 'replace-file-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** A temporary of `file` as a killed run leaves it, and one of a process still running (this test's parent). */
function leaveTemporaries(file: string): { ended: string; running: string } {
  const ended = temporaryOf(file, endedProcessId())
  const running = temporaryOf(file, process.ppid)
  writeFileSync(ended, '{"half a')
  writeFileSync(running, '{"being written')
  return { ended, running }
}

describe('replaceFile', () => {
  it('replaces the content whole, with the mode asked, and leaves no temporary', async () => {
    const file = join(work, 'state.json')
    writeFileSync(file, 'old')
    await replaceFile(file, '{"new":true}\n', { mode: 0o600, durable: true })
    expect(readFileSync(file, 'utf8')).toBe('{"new":true}\n')
    await replaceFile(join(work, 'fresh.json'), 'x', { mode: 0o600 })
    expect(statSync(join(work, 'fresh.json')).mode & 0o777).toBe(0o600)
    expect(readdirSync(work).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })

  it('removes its temporary when the rename fails, and keeps the old content', async () => {
    const dir = join(work, 'target-is-a-folder')
    await mkdir(join(dir, 'file', 'inside'), { recursive: true })
    await expect(replaceFile(join(dir, 'file'), 'x')).rejects.toThrow()
    expect(await readdir(dir)).toEqual(['file'])
  })

  it('removes the temporaries of ended processes only, and nothing else in the folder', async () => {
    const dir = join(work, 'sweep')
    await mkdir(dir)
    const file = join(dir, 'index.json')
    const { ended, running } = leaveTemporaries(file)
    const own = temporaryOf(file, process.pid)
    await writeFile(own, 'in flight')
    await writeFile(join(dir, 'other.json.1.tmp'), 'another file')
    await writeFile(`${file}.tmp`, 'not a pid')
    expect(await removeLeftTemporaries(file)).toEqual([ended])
    expect(existsSync(running) && existsSync(own)).toBe(true)
    expect((await readdir(dir)).length).toBe(4)
    expect(await removeLeftTemporaries(join(work, 'no-such-folder', 'x.json'))).toEqual([])
  })
})

describe('owners of state files remove what killed runs left', () => {
  it('push upload sessions, when opened', async () => {
    const cache = join(work, 'push-cache')
    const sessions = await UploadSessions.open('registry.site:5000', 'library', cache)
    sessions.set('library/app', `sha256:${'1'.repeat(64)}`, 'http://registry.site:5000/v2/upload/1')
    await sessions.flush()
    const [file] = await readdir(join(cache, 'push'))
    const { ended, running } = leaveTemporaries(join(cache, 'push', file!))
    const again = await UploadSessions.open('registry.site:5000', 'library', cache)
    expect(again.get('library/app', `sha256:${'1'.repeat(64)}`)).toBe('http://registry.site:5000/v2/upload/1')
    expect([existsSync(ended), existsSync(running)]).toEqual([false, true])
  })

  it('the registry overlay index, when serve opens the overlay', async () => {
    const dir = join(work, 'overlay')
    await RegistryOverlay.open(dir)
    const { ended, running } = leaveTemporaries(join(dir, 'index.json'))
    await RegistryOverlay.open(dir)
    expect([existsSync(ended), existsSync(running)]).toEqual([false, true])
  })

  it('the publish hash cache, when the digests are read or written', async () => {
    const cache = join(work, 'hash-cache')
    const volume = join(work, 'volume.tar')
    await writeFile(volume, Buffer.alloc(3000, 7))
    const source = await VolumeSet.openForRead(volume)
    await hashChunks({ source, chunkSize: 1024, cacheDir: cache })
    const [file] = await readdir(join(cache, 'publish'))
    const { ended, running } = leaveTemporaries(join(cache, 'publish', file!))
    let cached = false
    await hashChunks({ source, chunkSize: 1024, cacheDir: cache, onCached: () => (cached = true) })
    await source.close()
    expect(cached).toBe(true)
    expect([existsSync(ended), existsSync(running)]).toEqual([false, true])
  })

  it('the pull registry record, when written again', async () => {
    const state = join(work, 'pull-state')
    const file = await writePullRegistry(state, { url: 'http://h:30002' }, { name: 'a', version: '1' })
    const { ended, running } = leaveTemporaries(file)
    await writePullRegistry(state, { url: 'http://h:30003' }, { name: 'a', version: '1' })
    expect(JSON.parse(await readFile(file, 'utf8')).url).toBe('http://h:30003')
    expect([existsSync(ended), existsSync(running)]).toEqual([false, true])
  })

  it('the serve unit file, when the service is installed again', async () => {
    const root = join(work, 'root')
    const bundle = join(work, 'astrago-2.0.0.tar')
    await writeFile(bundle, '')
    const options = {
      bundle,
      flags: { port: 8443, stateDir: join(work, 'unit-state') },
      program: ['/x'],
      root,
    }
    const installed = await installServeService(options)
    expect(installed.unitFile).toBe(join(root, 'etc/systemd/system', SERVE_UNIT_NAME))
    const { ended, running } = leaveTemporaries(installed.unitFile)
    await installServeService(options)
    expect([existsSync(ended), existsSync(running)]).toEqual([false, true])
  })

  it('the site CA: a run killed before its certificate was renamed into place is completed, not refused', async () => {
    const dir = join(work, 'tls')
    const ca = await loadOrCreateSiteCa(dir, { commonName: 'replace-file test CA' })
    const certFile = join(dir, CA_CERT_FILE)
    const pem = await readFile(certFile, 'utf8')
    // The state of a run killed after writing the key and the certificate's temporary, before the rename.
    rmSync(certFile)
    await writeFile(temporaryOf(certFile, endedProcessId()), pem)
    const again = await loadOrCreateSiteCa(dir)
    expect(again.certPem).toBe(ca.certPem)
    expect(await readFile(certFile, 'utf8')).toBe(pem)
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })
})
