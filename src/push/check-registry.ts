import { runPool } from '../concurrency/pool.js'
import type { Task } from '../events/tasks.js'
import { blobExists, manifestDigest } from '../oci/push-checks.js'
import { loadDocuments } from './load-documents.js'
import type { PushContext } from './push-context.js'
import type { PushWork } from './push-plan.js'

/**
 * The first step of a push: what the registry already has. A tag at the bundle's digest is a complete image (its
 * blobs are then known to be in its repository); otherwise a HEAD per blob sorts them into held and missing. Each
 * artifact's manifests are read from the bundle on the way.
 */
export async function checkRegistry(context: PushContext, works: PushWork[], root: Task): Promise<void> {
  const { reader, client, target, signal, concurrency, limit, fail, stats, holders, members } = context
  const checkTask = root.child('push.check', `Check what ${target.registry} holds`, {
    total: works.length,
    unit: 'items',
    data: { registry: target.registry },
  })
  await checkTask.run(
    async (task) => {
      let done = 0
      await runPool(
        works,
        concurrency,
        async (work) => {
          try {
            await loadDocuments(reader, work, members)
            const current = await limit.run(() => manifestDigest(client, work.repo, work.reference, signal))
            if (current === work.digest) {
              work.present = true
              for (const blob of work.blobs) holders.add(blob.digest, work.repo.repository)
            } else {
              if (current) work.previous = current
              await Promise.all(
                work.blobs.map(async (blob) => {
                  if (await limit.run(() => blobExists(client, work.repo, blob.digest, signal))) {
                    holders.add(blob.digest, work.repo.repository)
                    stats.blobsSkipped += 1
                  } else work.missing.push(blob)
                }),
              )
            }
          } catch (error) {
            fail(error)
          }
          task.progress(++done, works.length, 'items')
        },
        signal,
      )
    },
    () => {
      const present = works.filter((w) => w.present).length
      return `${present} of ${works.length} already there`
    },
  )
}
