import { createHash } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentSink } from '../../../src/events/types.js'
import { sleep } from '../../../src/net/retry.js'
import { createRegistryClient, type RegistryClientBundle } from '../../../src/oci/create-registry-client.js'
import { type UploadNotice, uploadBlob } from '../../../src/oci/upload-blob.js'
import { startUpload, uploadStatus } from '../../../src/oci/upload-session.js'
import { pseudoRandomBytes } from '../../support/images.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'

/**
 * A run killed in the middle of a PATCH does not stop its bytes at once: what it had handed to the kernel (and a proxy
 * on the way) keeps arriving at the registry for a while. A rerun that asks the session's status in that time gets an
 * offset the registry moves past while the rerun sends: bytes sent twice, two requests writing one session, and 416s
 * that used to end in starting the blob over. Here the interrupted run's request is a raw socket that trickles its
 * body into a real distribution v3 for four seconds and is then cut; the rerun, started meanwhile, must continue the
 * session where those bytes end.
 */
describe('continuing an upload whose interrupted bytes are still arriving', () => {
  let registry: TestRegistry
  let clients: RegistryClientBundle

  beforeAll(async () => {
    registry = await startRegistry({ flavor: 'distribution-v3' })
    clients = await createRegistryClient({
      insecureRegistries: [registry.host],
      toolVersion: 'test',
      sink: silentSink,
    })
  })

  afterAll(async () => {
    await clients?.http.close()
    await registry?.stop()
  })

  it('waits for the offset to hold still, then continues the session', async () => {
    const blob = Buffer.concat([...pseudoRandomBytes('arriving', 16 << 20)])
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
    const repo = { registry: registry.host, repository: 'releases/arriving' }
    const session = await startUpload(clients.registry, repo)

    // The interrupted run: a PATCH of 14 MiB of which 2 MiB go at once, then 256 KiB every 100 ms, then the cut.
    const url = new URL(session)
    const socket: Socket = connect(Number(url.port), url.hostname)
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    socket.on('error', () => {})
    const declared = 14 << 20
    socket.write(
      `PATCH ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n` +
        `Content-Range: 0-${declared - 1}\r\n\r\n`,
    )
    socket.write(blob.subarray(0, 2 << 20))
    const trickle = (async () => {
      let sent = 2 << 20
      for (let i = 0; i < 40; i++) {
        await sleep(100)
        socket.write(blob.subarray(sent, sent + (256 << 10)))
        sent += 256 << 10
      }
      socket.destroy()
      return sent
    })()
    for (;;) {
      const state = await uploadStatus(clients.registry, repo, session)
      if (state && state.offset > 0) break
      await sleep(50)
    }

    const notices: UploadNotice[] = []
    const source = {
      open: (offset: number, length: number) => Readable.from([blob.subarray(offset, offset + length)]),
    }
    const result = await uploadBlob(clients.registry, repo, digest, blob.length, source, {
      resume: session,
      chunkSize: 1 << 20,
      monolithicMax: 1 << 20,
      onNotice: (notice) => notices.push(notice),
    })
    const sent = await trickle
    expect(notices.filter((n) => n.code === 'W_UPLOAD_RESTARTED')).toEqual([])
    expect(result.restarted).toBe(0)
    // It went on from where the interrupted run's bytes ended (all but, at most, its last piece), not from where
    // they stood when it first asked (2 MiB): nothing sent twice, no two requests writing the session at once.
    expect(result.continuedFrom).toBeGreaterThanOrEqual(sent - (256 << 10))
    expect(result.continuedFrom).toBeLessThanOrEqual(sent)
    const stored = await fetch(`${registry.url}/v2/${repo.repository}/blobs/${digest}`)
    expect(stored.status).toBe(200)
    const bytes = Buffer.from(await stored.arrayBuffer())
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(digest.slice('sha256:'.length))
  }, 60_000)
})
