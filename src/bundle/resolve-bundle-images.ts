import { ImageCollector } from '../charts/discover-images.js'
import { runPool } from '../concurrency/pool.js'
import { AirgapError } from '../errors.js'
import type { Task } from '../events/tasks.js'
import type { EventSink } from '../events/types.js'
import { formatImageReference, parseImageReference } from '../oci/reference.js'
import type { RegistryClient } from '../oci/registry-client.js'
import type { BundleSpec } from '../spec/types.js'
import type { PreparedChart } from './resolve-charts.js'
import { type ImageRequest, type ResolvedImage, resolveImage } from './resolve-images.js'
import type { StageFiles } from './stage-files.js'

/**
 * The image step of resolving a bundle: the images the definition lists, the charts render and the stages' own
 * manifests name, each requested once (by normalized name, remembering who asked for it), then resolved to digests.
 */
/** Every image the bundle needs, deduplicated by normalized name, sorted by it. */
export function collectImageRequests(
  spec: BundleSpec,
  charts: PreparedChart[],
  stageImages: { ref: string; sources: string[] }[],
): ImageRequest[] {
  const requests = new Map<string, ImageRequest>()
  const addRequest = (source: string, platforms: string[], from: string) => {
    let key: string
    try {
      key = formatImageReference(parseImageReference(source))
    } catch (error) {
      throw new AirgapError('E_INPUT', `${from} names an invalid image: ${(error as Error).message}`, {
        cause: error,
      })
    }
    const existing = requests.get(key)
    if (existing) existing.from.push(from)
    else requests.set(key, { source: key, platforms, from: [from] })
  }
  for (const image of spec.images) addRequest(image.ref, image.platforms ?? spec.platforms, 'definition')
  for (const chart of charts) {
    for (const image of chart.images)
      addRequest(image.ref, spec.platforms, `chart ${chart.spec.name} (${image.sources.join(', ')})`)
  }
  for (const image of stageImages) {
    addRequest(image.ref, spec.platforms, `stage manifests (${image.sources.join(', ')})`)
  }
  return [...requests.values()].sort((a, b) => a.source.localeCompare(b.source))
}

/** Resolves the requests in parallel (at most 8 at a time), in their order; an error names who asked for the image. */
export async function resolveImageRequests(
  registry: RegistryClient,
  imageList: ImageRequest[],
  concurrency: number,
  task: Task,
  signal?: AbortSignal,
): Promise<ResolvedImage[]> {
  const out: ResolvedImage[] = new Array(imageList.length)
  let done = 0
  await runPool(
    imageList.map((request, i) => ({ request, i })),
    Math.min(concurrency, 8),
    async ({ request, i }) => {
      try {
        out[i] = await resolveImage(registry, request, signal)
      } catch (error) {
        if (error instanceof AirgapError && !request.from.includes('definition')) {
          error.message = `${error.message} (rendered by ${request.from.join('; ')})`
        }
        throw error
      }
      task.progress(++done, imageList.length, 'items')
    },
    signal,
  )
  return out
}

/** Images named by workloads in the stages' plain manifests (stage.yaml, the stage's own settings, excluded). */
export function collectStageImages(
  stages: StageFiles[],
  sink: EventSink,
): { ref: string; sources: string[] }[] {
  const collector = new ImageCollector()
  for (const stage of stages) {
    for (const file of stage.files) {
      if (!/\.ya?ml$/.test(file.relative) || file.relative === 'stage.yaml') continue
      try {
        collector.addDocuments(file.bytes.toString('utf8'), `${stage.name}/${file.relative}`)
      } catch (error) {
        sink.emit({
          type: 'log',
          level: 'warn',
          code: 'W_STAGE_YAML',
          message: `Could not read images from ${stage.name}/${file.relative}: ${(error as Error).message}`,
          data: { stage: stage.name, file: file.relative },
        })
      }
    }
  }
  // An image chosen by the site values at install time (${{ site.… }}) cannot be bundled by name: say so.
  return collector.result().filter((image) => {
    if (!image.ref.includes('${{')) return true
    sink.emit({
      type: 'log',
      level: 'warn',
      code: 'W_STAGE_IMAGE_TEMPLATED',
      message: `${image.sources.join(', ')} names the image "${image.ref}", chosen by site values at install time; list the images it can be under images: in the definition.`,
      data: { image: image.ref, sources: image.sources },
    })
    return false
  })
}
