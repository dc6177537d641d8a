import { open, readdir, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Replacing a small state file (a journal, an index, a cache entry, a certificate) so that a reader, or a run killed at
 * any moment, finds the old content or the new and never a mix: the bytes go to `<file>.<pid>.tmp` first, which is then
 * renamed over the file. A run killed between the two leaves its temporary behind; whoever owns the file calls
 * removeLeftTemporaries when it opens the file again, and the temporaries of processes that are gone are removed.
 */
export interface ReplaceFileOptions {
  /** Permissions of a file created (default 0o666 less the umask). */
  mode?: number
  /** Flush the bytes to disk before the rename, so that a power cut cannot leave the new name on lost data. */
  durable?: boolean
}

export async function replaceFile(
  file: string,
  data: string | Uint8Array,
  options: ReplaceFileOptions = {},
): Promise<void> {
  const temporary = temporaryOf(file, process.pid)
  try {
    const handle = await open(temporary, 'w', options.mode)
    try {
      await handle.writeFile(data)
      if (options.durable) await handle.datasync()
    } finally {
      await handle.close()
    }
    await rename(temporary, file)
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined)
    throw error
  }
}

/**
 * The temporaries of `file` that processes which no longer run left behind (a process still running may be in the
 * middle of its write, and this process's own are its writes in flight).
 */
export async function leftTemporaries(file: string): Promise<string[]> {
  const folder = dirname(file)
  const prefix = `${basename(file)}.`
  const names = await readdir(folder).catch(() => [] as string[])
  return names
    .filter((name) => {
      if (!name.startsWith(prefix)) return false
      const pid = /^(\d+)\.tmp$/.exec(name.slice(prefix.length))?.[1]
      return pid !== undefined && !isRunning(Number(pid))
    })
    .map((name) => join(folder, name))
}

/** Removes what leftTemporaries finds; returns the paths removed. */
export async function removeLeftTemporaries(file: string): Promise<string[]> {
  const left = await leftTemporaries(file)
  for (const path of left) await rm(path, { force: true })
  return left
}

export function temporaryOf(file: string, pid: number): string {
  return `${file}.${pid}.tmp`
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' // running, as another user
  }
}
