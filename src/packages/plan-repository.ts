import { existsSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { AirgapError } from '../errors.js'
import type { HttpClient } from '../net/http.js'
import type { PackageRepositorySpec } from '../spec/types.js'
import type { AptBaseline } from './apt-closure.js'
import { planAptRepository, resolveAptPackages } from './apt-packages.js'
import type { AptSigningKey } from './apt-signature.js'
import { aptKernelRequests, rpmKernelRequests } from './kernel-packages.js'
import type { PlannedPackageRepository } from './repository.js'
import { planRpmPackages } from './rpm-packages.js'

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
  /**
   * URL prefix → keyring file: a mirror that re-signs what it serves (aptly, Artifactory, a local stand-in) is
   * checked with its own key instead of the definition's keyrings.
   */
  mirrorKeyrings?: Record<string, string>
  date?: Date
  signal?: AbortSignal
}

export async function planPackageRepository(
  spec: PackageRepositorySpec,
  options: PlanPackageRepositoryOptions,
): Promise<PlannedPackageRepository> {
  if (spec.apt) {
    const { suites, ...apt } = spec.apt
    const source = {
      ...apt,
      suite: suites[0]!,
      keyrings: keyringsFor(spec, spec.apt.mirror, spec.apt.keyrings, options),
    }
    const baseline: AptBaseline = {
      priorities: spec.baseline?.priorities ?? (spec.baseline?.packages ? [] : ['required']),
      ...(spec.baseline?.packages ? { packages: spec.baseline.packages } : {}),
    }
    const resolved = await resolveAptPackages({
      http: options.http,
      source,
      moreSuites: suites.slice(1),
      requests: spec.packages,
      indexRequests: (index) => aptKernelRequests(spec.kernels, index, { mirror: apt.mirror, suites }),
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
    return {
      ...planned,
      requested: resolved.requested,
      details: { ...planned.details, ...nodesDetail(spec) },
    }
  }
  if (spec.rpm) {
    const source = {
      ...spec.rpm,
      keyrings: keyringsFor(spec, spec.rpm.baseurl, spec.rpm.keyrings, options),
    }
    const { plan, resolved } = await planRpmPackages({
      http: options.http,
      source,
      requests: spec.packages,
      indexRequests: (index) => rpmKernelRequests(spec.kernels, index, spec.rpm!.baseurl),
      ...(spec.baseline?.packages ? { baseline: spec.baseline.packages } : {}),
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      name: spec.name,
      key: options.key,
      ...(options.date ? { date: options.date } : {}),
    })
    return {
      ...plan,
      details: { ...plan.details, ...nodesDetail(spec) },
      requested: resolved.requested,
      ...(spec.rpm.signed === 'packages' && !spec.rpm.trusted ? { packageKeyrings: source.keyrings } : {}),
    }
  }
  throw new AirgapError('E_INPUT', `The package repository ${spec.name} has no source.`)
}

/** The keyrings a source is checked with (a --mirror-keyring for its URL wins), each checked to exist. */
function keyringsFor(
  spec: PackageRepositorySpec,
  url: string,
  keyrings: string[],
  options: PlanPackageRepositoryOptions,
): string[] {
  const prefix = Object.keys(options.mirrorKeyrings ?? {})
    .filter((p) => url.startsWith(p.replace(/\/+$/, '')))
    .sort((a, b) => b.length - a.length)[0]
  const chosen =
    prefix !== undefined
      ? [resolve(options.mirrorKeyrings![prefix]!)]
      : keyrings.map((k) => (isAbsolute(k) ? k : resolve(options.base, k)))
  for (const keyring of chosen) {
    if (!existsSync(keyring))
      throw new AirgapError(
        'E_INPUT',
        `The keyring ${keyring} of the package repository ${spec.name} does not exist.`,
        {
          hints: [
            prefix !== undefined
              ? `Fix --mirror-keyring ${prefix}=…`
              : `Install the distribution's keyring package on this machine, or point packages[].${spec.apt ? 'apt' : 'rpm'}.keyrings at a copy of the key.`,
          ],
        },
      )
  }
  return chosen
}

/** `nodes: chosen` travels in the repository's details, for node-setup.sh. */
function nodesDetail(spec: PackageRepositorySpec): Record<string, string> {
  return spec.nodes === 'chosen' ? { nodes: 'chosen' } : {}
}
