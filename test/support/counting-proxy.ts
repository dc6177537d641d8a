/** A byte-counting, throttling TCP proxy for the publish and pull tests (see startCountingProxy). */
import { connect, createServer, type Server, type Socket } from 'node:net'

export interface CountingProxy {
  host: string
  /** Bytes carried from clients to the registry, and back. */
  upstreamBytes: number
  downstreamBytes: number
  /**
   * From now on, carries what the connections open now still send towards the registry at `bytesPerSecond`: a killed
   * client's bytes, buffered on the way, keep arriving at the registry slowly after it is gone (new connections keep
   * the proxy's own rate).
   */
  slowOpenConnections(bytesPerSecond: number): void
  stop(): Promise<void>
}

/**
 * A TCP proxy on loopback in front of a registry (TLS passes through untouched) that counts the bytes it carries
 * each way and can throttle either direction, so a transfer is slow enough to be killed mid-way.
 */
export async function startCountingProxy(
  target: string,
  options: { bytesPerSecond?: number; downstreamBytesPerSecond?: number },
): Promise<CountingProxy> {
  const [targetHost, targetPort] = target.split(':') as [string, string]
  const sockets = new Set<Socket>()
  const slowed = new Map<Socket, number>()
  const proxy: CountingProxy = {
    host: '',
    upstreamBytes: 0,
    downstreamBytes: 0,
    slowOpenConnections: (rate) => {
      for (const socket of sockets) slowed.set(socket, rate)
    },
    stop: async () => {},
  }
  const throttle = (from: Socket, to: Socket, rate: number | undefined, count: (n: number) => void) => {
    from.on('data', (chunk: Buffer) => {
      if (to.destroyed) return
      count(chunk.length)
      to.write(chunk)
      const now = slowed.get(from) ?? rate
      if (now) {
        from.pause()
        setTimeout(() => from.resume(), (1000 * chunk.length) / now)
      }
    })
  }
  const server: Server = createServer((client) => {
    const upstream = connect(Number(targetPort), targetHost)
    sockets.add(client)
    sockets.add(upstream)
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close)
    upstream.on('error', close)
    client.on('close', () => {
      // A client that is gone (killed) takes its upstream with it once all it sent has been read and carried.
      sockets.delete(client)
      slowed.delete(client)
      upstream.destroy()
    })
    upstream.on('close', () => {
      sockets.delete(upstream)
      slowed.delete(upstream)
      client.destroy()
    })
    throttle(client, upstream, options.bytesPerSecond, (n) => {
      proxy.upstreamBytes += n
    })
    throttle(upstream, client, options.downstreamBytesPerSecond, (n) => {
      proxy.downstreamBytes += n
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  proxy.host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  proxy.stop = async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return proxy
}
