import { AirgapError } from '../errors.js'
import { sha256Digest } from './digest.js'
import { PUSH_ACTIONS, pushFailure, repoName } from './push-failure.js'
import { describeErrorBody, type RegistryClient, type Repo } from './registry-client.js'

/**
 * Pushing a manifest (an image, an index, a Helm chart artifact) into a site registry, checked against the digest
 * the registry reports, since registries must keep manifests byte for byte.
 */

/** PUTs a manifest under a tag or its digest; returns the digest, checked against the one the registry reports. */
export async function putManifest(
  client: RegistryClient,
  repo: Repo,
  reference: string,
  mediaType: string,
  bytes: Buffer,
  options: { signal?: AbortSignal; label?: string } = {},
): Promise<string> {
  const digest = sha256Digest(bytes)
  const res = await client.request(
    repo,
    `manifests/${reference}`,
    {
      method: 'PUT',
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
      signal: options.signal,
      retry: true,
    },
    PUSH_ACTIONS,
  )
  const label = options.label ?? `${repoName(repo)}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`
  if (res.status === 201 || res.status === 200) {
    await res.body.dump()
    const reported = res.header('docker-content-digest')
    if (reported && reported !== digest) {
      throw new AirgapError(
        'E_INTEGRITY',
        `${repo.registry} stored the manifest of ${label} as ${reported}, not ${digest}: it rewrote the manifest.`,
        {
          hints: [
            'Registries must keep manifests byte for byte; check the registry or a proxy in front of it.',
          ],
        },
      )
    }
    return digest
  }
  if (res.status === 400 || res.status === 415) {
    const detail = await describeErrorBody(res)
    throw new AirgapError(
      'E_REMOTE',
      `${repo.registry} refused the manifest of ${label} (${mediaType}) as ${repoName(repo)}${reference.startsWith('sha256:') ? '@' : ':'}${reference}: ${detail}.`,
      {
        hints: [
          /BLOB_UNKNOWN|MANIFEST_UNKNOWN/i.test(detail)
            ? 'The registry is missing content the manifest names; run the same command again.'
            : `The registry may not accept ${mediaType} (older Harbor and some registries refuse OCI indexes or Helm artifacts); upgrade it or use one that does.`,
        ],
        data: {
          registry: repo.registry,
          repository: repo.repository,
          reference,
          mediaType,
          status: res.status,
        },
      },
    )
  }
  throw await pushFailure(client, repo, res, `manifest of ${label}`)
}
