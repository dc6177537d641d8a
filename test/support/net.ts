import { createServer } from 'node:net'

/** A TCP port that is free on the loopback interface right now. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port)
        else reject(new Error('could not read the port of a loopback listener'))
      })
    })
  })
}

/** Polls `probe` until it returns true, or fails after `timeoutMs` with the last error seen. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; describe?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      if (await probe()) return
    } catch (error) {
      lastError = error
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 200))
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : ''
  const extra = options.describe ? `\n${options.describe()}` : ''
  throw new Error(`timed out waiting for ${what}${detail}${extra}`)
}

/** The flags that serve on loopback at `port` and advertise it to the (simulated) nodes: serve, install. */
export function loopbackServe(port: number): string[] {
  return ['--host', '127.0.0.1', '--port', String(port), '--advertise', '127.0.0.1']
}
