import { AirgapError } from '../errors.js'
import { formatImageReference, parseImageReference } from '../oci/reference.js'
import { isPlainObject } from './objects.js'

/**
 * Container images in pod specs. Every workload kind carries a pod spec somewhere: a Pod at spec, a Deployment,
 * ReplicaSet, StatefulSet, DaemonSet, Job or ReplicationController at spec.template.spec, a CronJob at
 * spec.jobTemplate.spec.template.spec, a PodTemplate at template.spec. Unknown kinds (custom resources) are left
 * alone: their image fields are theirs to define.
 */
const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const

export function podSpecsOf(object: Record<string, unknown>): Record<string, unknown>[] {
  const at = (...path: string[]): Record<string, unknown> | undefined => {
    let current: unknown = object
    for (const key of path) current = isPlainObject(current) ? current[key] : undefined
    return isPlainObject(current) ? current : undefined
  }
  let spec: Record<string, unknown> | undefined
  switch (object.kind) {
    case 'Pod':
      spec = at('spec')
      break
    case 'Deployment':
    case 'ReplicaSet':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'Job':
    case 'ReplicationController':
      spec = at('spec', 'template', 'spec')
      break
    case 'CronJob':
      spec = at('spec', 'jobTemplate', 'spec', 'template', 'spec')
      break
    case 'PodTemplate':
      spec = at('template', 'spec')
      break
  }
  return spec ? [spec] : []
}

/** Every image named in the object's pod specs, as written. */
export function imagesOf(object: Record<string, unknown>): string[] {
  const images: string[] = []
  for (const spec of podSpecsOf(object)) {
    for (const list of CONTAINER_LISTS) {
      const containers = spec[list]
      if (!Array.isArray(containers)) continue
      for (const c of containers) if (isPlainObject(c) && typeof c.image === 'string') images.push(c.image)
    }
  }
  return images
}

/**
 * The image as served by a site registry that keeps full upstream names: `docker.io/library/nginx:1.27` (or just
 * `nginx:1.27`) becomes `<registry>/docker.io/library/nginx:1.27`. An image already under the registry is kept.
 */
export function relocateImage(image: string, registry: string): string {
  const prefix = registry.replace(/\/+$/, '')
  if (image.startsWith(`${prefix}/`)) return image
  let normalized: string
  try {
    normalized = formatImageReference(parseImageReference(image))
  } catch {
    return image
  }
  return `${prefix}/${normalized}`
}

/**
 * Returns a copy of the object with every container image of its pod specs relocated to `registry`, and the list of
 * [from, to] pairs changed. The object itself is not modified. An image that is not an image reference cannot be
 * relocated: left as it is, the node would pull it from outside the site (or fail to), so it is an E_INPUT error
 * naming the object, the container and the value.
 */
export function rewriteImages<T extends Record<string, unknown>>(
  object: T,
  registry: string,
): { object: T; rewritten: [string, string][] } {
  const copy = structuredClone(object)
  const rewritten: [string, string][] = []
  for (const spec of podSpecsOf(copy)) {
    for (const list of CONTAINER_LISTS) {
      const containers = spec[list]
      if (!Array.isArray(containers)) continue
      for (const c of containers) {
        if (!isPlainObject(c) || typeof c.image !== 'string') continue
        const to = relocateImage(c.image, registry)
        if (to === c.image && !isRelocatable(c.image, registry))
          throw unrelocatable(object, list, c, registry)
        if (to !== c.image) rewritten.push([c.image, to])
        c.image = to
      }
    }
  }
  return { object: copy, rewritten }
}

function isRelocatable(image: string, registry: string): boolean {
  if (image.startsWith(`${registry.replace(/\/+$/, '')}/`)) return true
  try {
    parseImageReference(image)
    return true
  } catch {
    return false
  }
}

function unrelocatable(
  object: Record<string, unknown>,
  list: string,
  container: Record<string, unknown>,
  registry: string,
): AirgapError {
  const metadata = isPlainObject(object.metadata) ? object.metadata : {}
  const name = `${typeof metadata.namespace === 'string' ? `${metadata.namespace}/` : ''}${String(metadata.name)}`
  return new AirgapError(
    'E_INPUT',
    `${String(object.kind)} ${name}: the image ${JSON.stringify(container.image)} of ${list} ${JSON.stringify(container.name ?? '?')} is not an image reference, so it cannot be pointed at ${registry}.`,
    {
      hints: [
        'Write it as [registry/]repository[:tag][@sha256:<digest>] in the stage manifest, or install without --relocate-images.',
      ],
      data: { kind: object.kind, name, image: container.image },
    },
  )
}
