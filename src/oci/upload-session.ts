import { sleep } from '../net/retry.js'
import { PUSH_ACTIONS, pushFailure, repoName } from './push-failure.js'
import type { RegistryClient, Repo } from './registry-client.js'

/**
 * The upload sessions of the OCI distribution API: opening one, asking where one stands (the `Range` of the bytes the
 * registry holds, and the URL to continue at), and abandoning one.
 */

/** Opens an upload session; returns its absolute URL. */
export async function startUpload(client: RegistryClient, repo: Repo, signal?: AbortSignal): Promise<string> {
  const res = await client.requestUrl(
    repo,
    client.repositoryUrl(repo, 'blobs/uploads/'),
    { method: 'POST', headers: { 'content-length': '0' }, signal, retry: true },
    [client.scope(repo, PUSH_ACTIONS)],
  )
  const location = res.header('location')
  if (res.status === 202 && location) {
    await res.body.dump()
    return client.resolveUrl(repo, location)
  }
  throw await pushFailure(client, repo, res, `upload to ${repoName(repo)}`)
}

/** Where an upload session stands: how many bytes the registry holds, and the URL to continue at. */
export async function uploadStatus(
  client: RegistryClient,
  repo: Repo,
  session: string,
  signal?: AbortSignal,
): Promise<{ offset: number; session: string } | undefined> {
  const res = await client.requestUrl(repo, session, { method: 'GET', signal }, [
    client.scope(repo, PUSH_ACTIONS),
  ])
  await res.body.dump()
  if (res.status !== 204 && res.status !== 200) return undefined
  const offset = parseRangeEnd(res.header('range'))
  if (offset === undefined) return undefined
  const location = res.header('location')
  return { offset, session: location ? client.resolveUrl(repo, location) : session }
}

/**
 * The status of a session an interrupted run left, once its offset holds still: what the run sent before it stopped
 * can still be arriving at the registry after it is gone (a killed process's socket buffers drain on their own, a
 * proxy forwards what it holds), so the offset is asked again, a moment apart, until two answers agree.
 */
export async function settledStatus(
  client: RegistryClient,
  repo: Repo,
  session: string,
  signal?: AbortSignal,
  pauseMs = 500,
): Promise<{ offset: number; session: string } | undefined> {
  let state = await uploadStatus(client, repo, session, signal)
  // Bounded: bytes that keep arriving for ten minutes are no longer an interrupted run's (go on from the last answer).
  for (let asked = 0; state && asked < 600_000 / pauseMs; asked++) {
    await sleep(pauseMs, signal)
    const again = await uploadStatus(client, repo, state.session, signal)
    if (!again || again.offset <= state.offset) return again
    state = again
  }
  return state
}

/** Abandons an upload session (best effort: registries expire them anyway). */
export async function cancelUpload(
  client: RegistryClient,
  repo: Repo,
  session: string,
  signal?: AbortSignal,
): Promise<void> {
  try {
    const res = await client.requestUrl(repo, session, { method: 'DELETE', signal }, [
      client.scope(repo, PUSH_ACTIONS),
    ])
    await res.body.dump()
  } catch {}
}

/** `Range: 0-1234` (or `bytes=0-1234`) → 1235 bytes held; `0-0` is read as nothing held yet. */
export function parseRangeEnd(range: string | undefined): number | undefined {
  const match = /^(?:bytes=)?(\d+)-(\d+)$/.exec(range?.trim() ?? '')
  if (!match) return undefined
  const end = Number(match[2])
  return end === 0 ? 0 : end + 1
}
