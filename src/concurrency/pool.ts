/** A bounded pool for async work over a list: the one concurrency limit bundle, verify and push share. */

/** Runs `fn` over `items` with at most `limit` at a time; the first failure stops new work and is rethrown. */
export async function runPool<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0
  let failure: unknown
  const worker = async () => {
    while (next < items.length && failure === undefined && !signal?.aborted) {
      const item = items[next++]!
      try {
        await fn(item)
      } catch (error) {
        failure ??= error
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  if (failure !== undefined) throw failure
  if (signal?.aborted) throw signal.reason
}
