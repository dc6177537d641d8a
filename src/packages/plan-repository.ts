import { isAbsolute, resolve } from 'node:path'
import { AirgapError } from '../errors.js'
import type { HttpClient } from '../net/http.js'
import type { PackageRepositorySpec } from '../spec/types.js'
import type { AptBaseline } from './apt-closure.js'
import { planAptRepository, resolveAptPackages } from './apt-packages.js'
import type { AptSigningKey } from './apt-signature.js'
import type { PlannedPackageRepository } from './repository.js'

/**
 * One `packages:` entry of a bundle definition, planned for the bundle: the closure resolved against the upstream's
 * signed indices, the repository's metadata written and signed with the bundle key. Nothing is downloaded here but
 * the indices; the package files are fetched by the bundle writer.
 */
export interface PlanPackageRepositoryOptions {
  http: HttpClient
  key: AptSigningKey
  /** The definition's folder: relative keyring paths resolve against it. */
  base: string
  cacheDir?: string
  date?: Date
  signal?: AbortSignal
}

/** What a kernel version (`uname -r`) adds to the requests: the headers the GPU driver is built against. */
export function kernelRequests(kind: 'apt' | 'rpm', kernels: string[]): string[] {
  return kernels.map((kernel) =>
    kind === 'apt'
      ? `linux-headers-${kernel}`
      : `kernel-devel = ${kernel.replace(/\.(x86_64|aarch64)$/, '')}`,
  )
}

export async function planPackageRepository(
  spec: PackageRepositorySpec,
  options: PlanPackageRepositoryOptions,
): Promise<PlannedPackageRepository> {
  const keyrings = (list: string[]) => list.map((k) => (isAbsolute(k) ? k : resolve(options.base, k)))
  if (spec.apt) {
    const source = { ...spec.apt, keyrings: keyrings(spec.apt.keyrings) }
    const baseline: AptBaseline = {
      priorities: spec.baseline?.priorities ?? (spec.baseline?.packages ? [] : ['required']),
      ...(spec.baseline?.packages ? { packages: spec.baseline.packages } : {}),
    }
    const requests = [...spec.packages, ...kernelRequests('apt', spec.kernels)]
    const resolved = await resolveAptPackages({
      http: options.http,
      source,
      requests,
      baseline,
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    })
    const planned = await planAptRepository({
      name: spec.name,
      source,
      resolved,
      key: options.key,
      ...(options.date ? { date: options.date } : {}),
    })
    return { ...planned, requested: requests }
  }
  throw new AirgapError('E_INPUT', `The package repository ${spec.name} has no source.`)
}
