import { statfs } from 'node:fs/promises'
import { createServer } from 'node:net'
import { dirname } from 'node:path'
import { AirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'

/**
 * Checks of this machine before anything else (the cluster is checked by src/stages/preflight.ts before stage 1):
 *   - the install port is free: probed at once, so a busy port fails in a second rather than after verifying a large
 *     bundle (the server checks again as it starts);
 *   - free disk space in the state folder, where images pushed to the site server and the unpacked helm go. Too
 *     little is a warning, not an error: a site that pushes nothing needs almost none.
 */
export const LOW_DISK_BYTES = 1 << 30

export interface FreeSpace {
  /** The folder that was measured (the state folder, or its nearest existing parent). */
  dir: string
  freeBytes: number
  low: boolean
}

export async function checkFreeSpace(options: {
  dir: string
  sink: EventSink
  minBytes?: number
}): Promise<FreeSpace | undefined> {
  const minBytes = options.minBytes ?? LOW_DISK_BYTES
  let dir = options.dir
  for (;;) {
    try {
      const fs = await statfs(dir)
      const freeBytes = Number(fs.bavail) * Number(fs.bsize)
      const low = freeBytes < minBytes
      if (low) {
        options.sink.emit({
          type: 'log',
          level: 'warn',
          code: 'W_LOW_DISK',
          message: `Only ${formatMiB(freeBytes)} free in ${dir} (the state folder ${options.dir}: pushes to the site server and the unpacked helm go there); ${formatMiB(minBytes)} or more is advised. Free some space or choose another folder with --state-dir.`,
          data: { dir, stateDir: options.dir, freeBytes, minBytes },
        })
      }
      return { dir, freeBytes, low }
    } catch (error) {
      const parent = dirname(dir)
      if ((error as { code?: string }).code !== 'ENOENT' || parent === dir) return undefined
      dir = parent
    }
  }
}

function formatMiB(bytes: number): string {
  return `${Math.floor(bytes / (1 << 20))} MiB`
}

/** Fails with E_ENVIRONMENT, naming the port and suggesting --port, when `host`:`port` cannot be listened on. */
export async function checkPortFree(host: string, port: number): Promise<void> {
  if (!port) return
  await new Promise<void>((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(
          new AirgapError('E_ENVIRONMENT', `Port ${port} on ${host} is already in use.`, {
            hints: ['Stop what listens there (ss -ltnp), or choose another port with --port.'],
            data: { port, host },
          }),
        )
      } else if (error.code === 'EACCES') {
        reject(
          new AirgapError('E_ENVIRONMENT', `Not allowed to listen on port ${port} on ${host}.`, {
            hints: ['Ports below 1024 need root: choose another port with --port (the default is 8443).'],
            data: { port, host },
          }),
        )
      } else reject(error)
    })
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()))
  })
}
