import { AirgapError } from '../errors.js'
import { MANIFEST_ACCEPT } from './media-types.js'
import { PUSH_ACTIONS, pushFailure, repoName } from './push-failure.js'
import type { RegistryClient, Repo } from './registry-client.js'

/**
 * Asking a site registry what it already holds before sending anything: whether a repository has a blob, which
 * digest a tag points to, and mounting a blob the registry holds in another repository, so a rerun or a shared layer
 * sends no bytes.
 */

export type MountResult = { mounted: true } | { mounted: false; session?: string }

/** Does the repository have this blob? (HEAD) */
export async function blobExists(
  client: RegistryClient,
  repo: Repo,
  digest: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const res = await client.request(repo, `blobs/${digest}`, { method: 'HEAD', signal }, PUSH_ACTIONS)
  await res.body.dump()
  if (res.status === 200) return true
  if (res.status === 404) return false
  throw await pushFailure(client, repo, res, `blob ${digest} of ${repoName(repo)}`)
}

/** The digest a tag (or digest) points to in the repository, or undefined when it has none (HEAD). */
export async function manifestDigest(
  client: RegistryClient,
  repo: Repo,
  reference: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const res = await client.request(
    repo,
    `manifests/${reference}`,
    { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT }, signal },
    PUSH_ACTIONS,
  )
  await res.body.dump()
  if (res.status === 404) return undefined
  if (res.status !== 200)
    throw await pushFailure(client, repo, res, `manifest ${repoName(repo)}:${reference}`)
  const digest = res.header('docker-content-digest')
  if (digest?.startsWith('sha256:')) return digest
  // A registry that does not say: read it and hash it.
  return (await client.getManifest(repo, reference, signal)).digest
}

/**
 * Asks the registry to link a blob it holds in `from` (a repository of the same registry) into `repo`. 201 means
 * mounted; 202 means it did not (no such blob there, no access, or no mount support) and opened an upload session
 * instead, which the caller can upload into.
 */
export async function mountBlob(
  client: RegistryClient,
  repo: Repo,
  digest: string,
  from: string,
  signal?: AbortSignal,
): Promise<MountResult> {
  const url = client.repositoryUrl(
    repo,
    `blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
  )
  const res = await client.requestUrl(
    repo,
    url,
    { method: 'POST', headers: { 'content-length': '0' }, signal, retry: true },
    [client.scope(repo, PUSH_ACTIONS), client.scope({ registry: repo.registry, repository: from }, 'pull')],
  )
  if (res.status === 201) {
    await res.body.dump()
    const reported = res.header('docker-content-digest')
    if (reported && reported !== digest) {
      throw new AirgapError(
        'E_REMOTE',
        `${repo.registry} mounted ${reported} into ${repo.repository} when asked for ${digest}.`,
      )
    }
    return { mounted: true }
  }
  if (res.status === 202) {
    await res.body.dump()
    const location = res.header('location')
    return { mounted: false, session: location ? client.resolveUrl(repo, location) : undefined }
  }
  throw await pushFailure(client, repo, res, `upload of blob ${digest} to ${repoName(repo)}`)
}
