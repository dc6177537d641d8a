import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { formatBytes } from '../events/format.js'
import type { Task } from '../events/tasks.js'
import type { HttpClient } from '../net/http.js'
import { planPackageRepository } from '../packages/plan-repository.js'
import type { PlannedPackageRepository } from '../packages/repository.js'
import { withSigningKey } from '../packages/signing-key.js'
import type { BundleSpec } from '../spec/types.js'

/**
 * The package step of resolving a bundle: every apt/rpm repository of the definition resolved to its dependency
 * closure against the signed upstream indices, and its metadata written and signed with the bundle's key.
 */
export interface ResolvePackagesOptions {
  http: HttpClient
  /** GnuPG home of the key that signs the package repositories (default: the user's own, created once). */
  signingKey?: string
  /** URL prefix → keyring for package mirrors that sign with their own key (see plan-repository.ts). */
  mirrorKeyrings?: Record<string, string>
  /** Where package indices are cached between runs (default: $XDG_CACHE_HOME/astrago-airgap/packages). */
  packageCacheDir?: string
  signal?: AbortSignal
}

/** Resolves and signs every package repository of the definition, one subtask each. */
export async function resolvePackageRepositories(
  spec: BundleSpec,
  options: ResolvePackagesOptions,
  task: Task,
): Promise<PlannedPackageRepository[]> {
  const base = dirname(spec.source)
  const cacheDir =
    options.packageCacheDir ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'astrago-airgap', 'packages')
  return await withSigningKey(options.signingKey, async (key) => {
    const planned: PlannedPackageRepository[] = []
    for (const repository of spec.packages) {
      planned.push(
        await task
          .child('bundle.package-repository', `${repository.apt ? 'apt' : 'rpm'} ${repository.name}`, {
            data: { repository: repository.name, format: repository.apt ? 'apt' : 'rpm' },
          })
          .run(
            () =>
              planPackageRepository(repository, {
                http: options.http,
                key,
                base,
                cacheDir,
                ...(options.mirrorKeyrings ? { mirrorKeyrings: options.mirrorKeyrings } : {}),
                ...(options.signal ? { signal: options.signal } : {}),
              }),
            (r) =>
              `${r.packages.length} packages, ${formatBytes(r.packages.reduce((a, p) => a + p.size, 0))}`,
          ),
      )
      task.progress(planned.length, spec.packages.length, 'items', 0)
    }
    return planned
  })
}
