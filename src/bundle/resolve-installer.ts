import { createHash } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { AirgapError } from '../errors.js'
import type { EventSink } from '../events/types.js'
import { INSTALLER, installerFileName } from './layout.js'
import type { LockedInstaller } from './metadata.js'

/**
 * The self-contained installer a bundle may carry: which executable it is (given, or the one scripts/build-installer
 * wrote for the bundle's platform), checked to be a Linux amd64/arm64 ELF, hashed, and offered as a member source.
 */
export interface PreparedInstaller {
  /** The executable on this machine. */
  file: string
  locked: LockedInstaller
}

/** ELF e_machine values of the platforms the installer is built for: EM_X86_64 and EM_AARCH64. */
const ELF_MACHINES: Record<number, string> = { 62: 'linux/amd64', 183: 'linux/arm64' }

/**
 * Finds and checks the installer: a Linux executable (its platform from the ELF header) and its sha256. With
 * `{ directory }`, the one for the first of the bundle's linux platforms found there, or none.
 */
export async function resolveInstaller(
  option: string | { directory: string },
  platforms: string[],
  toolVersion: string,
  sink: EventSink,
  signal?: AbortSignal,
): Promise<PreparedInstaller | undefined> {
  let file: string
  if (typeof option === 'string') {
    file = resolve(option)
  } else {
    const arches = platforms.flatMap((p) => /^linux\/(amd64|arm64)(\/|$)/.exec(p)?.[1] ?? [])
    const found = [...new Set(arches)]
      .map((arch) => join(option.directory, installerFileName(arch)))
      .find((path) => existsSync(path))
    if (!found) return undefined
    file = found
  }
  const info = await stat(file).catch((error: unknown) => {
    throw new AirgapError('E_INPUT', `The installer ${file} does not exist.`, {
      hints: ['Build it with scripts/build-installer, or leave it out with --no-installer.'],
      cause: error,
    })
  })
  const platform = info.isFile() ? await readElfPlatform(file) : undefined
  if (!platform) {
    throw new AirgapError(
      'E_INPUT',
      `The installer ${file} is not a Linux amd64 or arm64 executable (one built by scripts/build-installer).`,
    )
  }
  if (!platforms.some((p) => p === platform || p.startsWith(`${platform}/`))) {
    sink.emit({
      type: 'log',
      level: 'warn',
      code: 'W_INSTALLER_PLATFORM',
      message: `The installer ${file} runs on ${platform}, which is not one of the bundle's platforms (${platforms.join(', ')}).`,
      data: { file, platform, platforms },
    })
  }
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { signal })) hash.update(chunk as Buffer)
  return {
    file,
    locked: { path: INSTALLER, size: info.size, sha256: hash.digest('hex'), platform, version: toolVersion },
  }
}

/** linux/amd64 or linux/arm64 from the ELF header of a 64-bit little-endian executable, else undefined. */
async function readElfPlatform(file: string): Promise<string | undefined> {
  const handle = await open(file, 'r')
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(20), 0, 20, 0)
    // Magic, 64-bit class, little-endian, and an executable (ET_EXEC, or ET_DYN as position-independent ones are).
    const type = bytesRead === 20 ? buffer.readUInt16LE(16) : 0
    const isExecutable =
      bytesRead === 20 &&
      buffer.readUInt32BE(0) === 0x7f454c46 &&
      buffer[4] === 2 &&
      buffer[5] === 1 &&
      (type === 2 || type === 3)
    return isExecutable ? ELF_MACHINES[buffer.readUInt16LE(18)] : undefined
  } finally {
    await handle.close()
  }
}
