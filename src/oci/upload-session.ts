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
