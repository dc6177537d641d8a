import { accessSync, constants, existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'

/**
 * Finds the real components the tests run. The Go-built ones (Kubernetes, etcd, kwok, helm, distribution v3) come
 * from scripts/build-tools' cache; the Debian ones (docker-registry, skopeo, htpasswd) from PATH. A missing
 * component is an error that says how to get it: integration tests never skip.
 */
export function toolsBinDir(): string {
  if (process.env.ASTRAGO_TOOLS_BIN) return process.env.ASTRAGO_TOOLS_BIN
  const cache =
    process.env.ASTRAGO_TOOLS_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'astrago-airgap', 'tools')
  return join(cache, 'bin')
}

export function findTool(name: string): string {
  const dirs = [toolsBinDir(), ...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin']
  for (const dir of dirs) {
    if (!dir) continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  throw new Error(
    `The test component "${name}" was not found (looked in ${toolsBinDir()} and PATH). ` +
      'Run scripts/test, which installs the Debian packages and builds the Go components with scripts/build-tools.',
  )
}

export function hasTool(name: string): boolean {
  try {
    findTool(name)
    return true
  } catch {
    return existsSync(join(toolsBinDir(), name))
  }
}
