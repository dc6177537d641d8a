import { spawn } from 'node:child_process'
import { PassThrough, type Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { AirgapError } from '../errors.js'

/**
 * Decompresses by name: `.gz` in-process, `.xz` with `xz -dc`, `.zst` with `zstd -dc`, `.bz2` with `bzip2 -dc`;
 * anything else is read as is.
 */
export function decompress(path: string, input: Readable): Readable {
  if (path.endsWith('.gz')) return input.pipe(createGunzip({ chunkSize: 1 << 18 }))
  const tools: Record<string, [string, string]> = {
    '.xz': ['xz', 'xz-utils'],
    '.zst': ['zstd', 'zstd'],
    '.zck': ['', ''],
    '.bz2': ['bzip2', 'bzip2'],
  }
  const suffix = Object.keys(tools).find((s) => path.endsWith(s))
  if (!suffix) return input
  const [tool, debianPackage] = tools[suffix]!
  if (!tool)
    throw new AirgapError('E_INPUT', `${path}: zchunk-compressed metadata is not supported`, {
      hints: ['Point the source at a repository that also publishes .gz, .xz or .zst metadata.'],
    })
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] })
  // The output ends only once the tool has exited 0: a corrupt or truncated file is an error, never a short index.
  const output = new PassThrough({ highWaterMark: 1 << 18 })
  child.on('error', (error) =>
    output.destroy(
      new AirgapError('E_ENVIRONMENT', `cannot run ${tool} to decompress ${path}`, {
        cause: error,
        hints: [`Install ${debianPackage} (${tool} must be on PATH).`],
      }),
    ),
  )
  child.on('close', (code) => {
    if (code === 0) output.end()
    else if (code !== null || !output.destroyed)
      output.destroy(
        new AirgapError('E_INPUT', `${path}: ${tool} -dc failed (exit ${code}): corrupt or truncated`),
      )
  })
  child.stdout.pipe(output, { end: false })
  input.on('error', (error) => {
    output.destroy(error)
    child.kill()
  })
  output.on('close', () => {
    if (child.exitCode === null) child.kill()
  })
  child.stdin.on('error', () => {})
  input.pipe(child.stdin)
  return output
}
