/**
 * Which repositories of the target registry hold a blob, as far as this push knows (found by the check, or put there
 * by an upload or a mount): the sources a blob can be mounted from instead of being sent again.
 */
export class BlobHolders {
  private readonly repositories = new Map<string, Set<string>>()

  add(digest: string, repository: string): void {
    const set = this.repositories.get(digest) ?? new Set<string>()
    set.add(repository)
    this.repositories.set(digest, set)
  }

  /** A repository other than `repository` that holds the blob, to mount it from. */
  pick(digest: string, repository: string): string | undefined {
    return [...(this.repositories.get(digest) ?? [])].find((r) => r !== repository)
  }

  /** Does any repository of the target hold the blob? */
  has(digest: string): boolean {
    return this.repositories.has(digest)
  }

  /** Does this repository hold the blob? */
  holds(digest: string, repository: string): boolean {
    return this.repositories.get(digest)?.has(repository) ?? false
  }
}
