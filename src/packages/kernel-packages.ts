import { AirgapError } from '../errors.js'
import type { AptIndex } from './apt-closure.js'
import { parseRelations } from './apt-index.js'
import type { RpmIndex } from './rpm-index.js'

/**
 * What a `kernels:` entry (a node's `uname -r`) adds to a package repository's requests: everything the GPU driver
 * container needs to build its kernel module offline against the node's running kernel, looked up in the archive's
 * own index so that a kernel the archive does not carry stops the bundle with a message naming it.
 *
 * - apt (Ubuntu): `linux-headers-<k>`, `linux-image-<k>`, `linux-modules-<k>`, and `linux-modules-extra-<k>` where
 *   the archive has it (generic kernels have one, cloud flavours often not). Debian ships the modules inside
 *   `linux-image-<k>`: there `linux-modules-<k>` is required only when the image depends on it.
 * - rpm (RHEL and rebuilds): `kernel-headers`, `kernel-devel` and `kernel-core` of exactly that version, and `gcc`.
 *   The kernel of a RHEL minor release is built with that release's system compiler, and the distribution's `gcc`
 *   in the same repositories is that compiler (the GPU driver container installs `gcc` from the node's repositories
 *   too), so the newest `gcc` the repositories carry is taken, once, whatever the number of kernels.
 */

export interface AptKernelSource {
  mirror: string
  suites: string[]
}

/** apt requests for the kernels, each package checked against the index. */
export function aptKernelRequests(kernels: string[], index: AptIndex, source: AptKernelSource): string[] {
  const requests: string[] = []
  for (const kernel of kernels) {
    const names = {
      headers: `linux-headers-${kernel}`,
      image: `linux-image-${kernel}`,
      modules: `linux-modules-${kernel}`,
      extra: `linux-modules-extra-${kernel}`,
    }
    const has = (name: string) => index.candidates.has(name)
    const image = index.candidates.get(names.image)?.[0]
    const imageNeedsModules =
      !image ||
      parseRelations(image.depends).some((group) => group.some((relation) => relation.name === names.modules))
    const missing = [names.headers, names.image].filter((name) => !has(name))
    if (!has(names.modules) && imageNeedsModules) missing.push(names.modules)
    if (missing.length > 0)
      throw new AirgapError(
        'E_INPUT',
        `The kernel ${kernel} is not in ${source.mirror} (suites searched: ${source.suites.join(', ')}): ` +
          `no ${missing.join(', ')}.`,
        {
          hints: [
            `Check the kernel version: it is what \`uname -r\` prints on the GPU nodes (e.g. 5.15.0-91-generic).`,
            'An older kernel is often only in the -updates or -security suite: add it to apt.suites.',
          ],
          data: { kernel, missing, mirror: source.mirror, suites: source.suites },
        },
      )
    requests.push(names.headers, names.image)
    if (has(names.modules)) requests.push(names.modules)
    if (has(names.extra)) requests.push(names.extra)
  }
  return requests
}

/** The version-release of a `uname -r` on an rpm distribution: the architecture suffix is not part of it. */
export function rpmKernelVersion(kernel: string): string {
  return kernel.replace(/\.(x86_64|aarch64|ppc64le|s390x)$/, '')
}

const RPM_KERNEL_PACKAGES = ['kernel-headers', 'kernel-devel', 'kernel-core']

/** rpm requests for the kernels (and gcc once), each checked against the index. */
export function rpmKernelRequests(kernels: string[], index: RpmIndex, baseurl: string): string[] {
  if (kernels.length === 0) return []
  const requests: string[] = []
  for (const kernel of kernels) {
    const version = rpmKernelVersion(kernel)
    const missing = RPM_KERNEL_PACKAGES.filter(
      (name) => !(index.byName.get(name) ?? []).some((pkg) => `${pkg.version}-${pkg.release}` === version),
    )
    if (missing.length > 0)
      throw new AirgapError(
        'E_INPUT',
        `The kernel ${kernel} is not in the repository ${baseurl}: no ${missing.map((m) => `${m}-${version}`).join(', ')}.`,
        {
          hints: [
            'Check the kernel version: it is what `uname -r` prints on the GPU nodes (e.g. 5.14.0-427.13.1.el9_4.x86_64).',
            'Point the rpm source at a repository that still carries that kernel (a vault or a snapshot of the minor release), or update the nodes to a kernel it has.',
          ],
          data: { kernel, missing, repository: baseurl },
        },
      )
    requests.push(...RPM_KERNEL_PACKAGES.map((name) => `${name} = ${version}`))
  }
  if (!index.byName.has('gcc'))
    throw new AirgapError(
      'E_INPUT',
      `The repository ${baseurl} has no gcc, which the GPU driver needs to build against the kernels ${kernels.join(', ')}.`,
      {
        hints: [
          "Use a repository that carries the distribution's gcc with the kernel packages (on RHEL, BaseOS and AppStream together).",
        ],
        data: { kernels, repository: baseurl },
      },
    )
  requests.push('gcc')
  return requests
}
