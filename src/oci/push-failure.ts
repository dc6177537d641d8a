import { AirgapError } from '../errors.js'
import type { HttpResponse } from '../net/http.js'
import { describeErrorBody, type RegistryClient, type Repo } from './registry-client.js'

/**
 * What every request of a push into a site registry shares: the scope it asks for (`pull,push` on the target
 * repository, so one bearer token serves a repository's whole push), how it names the repository, and the error it
 * raises when the registry refuses.
 */

/** The actions every push request asks for on its target repository. */
export const PUSH_ACTIONS = 'pull,push'

/** `registry/repository`, as messages name the target. */
export function repoName(repo: Repo): string {
  return `${repo.registry}/${repo.repository}`
}

/** Errors for push requests: a 404 on a push usually means a missing Harbor project. */
export async function pushFailure(
  client: RegistryClient,
  repo: Repo,
  res: HttpResponse,
  what: string,
): Promise<AirgapError> {
  if (res.status !== 404) return await client.failure(repo, res, what)
  const detail = await describeErrorBody(res)
  const project = repo.repository.split('/')[0]
  return new AirgapError(
    'E_REMOTE',
    `${repo.registry} has no repository ${repo.repository} for the ${what}: ${detail}.`,
    {
      hints: [
        `On Harbor, create the project "${project}" first (or name an existing project with --prefix) and give the user push rights in it.`,
      ],
      data: { registry: repo.registry, repository: repo.repository, status: 404 },
    },
  )
}
