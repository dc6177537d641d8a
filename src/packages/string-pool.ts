import type { RpmDependency } from './rpm-package.js'

/**
 * Strings that stay small in memory while a large rpm-md document streams through: copies that do not pin the chunk
 * they were cut from, and one copy per distinct string.
 */

/**
 * A copy of `text` that does not share memory with the chunk it was cut from: V8 keeps substrings as slices of their
 * parent, so one package name would pin a whole 256 KiB chunk of primary.xml (and the index all of it).
 */
export function detachString(text: string): string {
  return text.length < 13 ? text : ` ${text}`.slice(1)
}

/** One detached copy per distinct string: dependency names and versions repeat across thousands of packages. */
export class StringPool {
  private readonly strings = new Map<string, string>()
  /** Dependencies are immutable: one object per distinct entry. */
  readonly dependencies = new Map<string, RpmDependency>()

  get(text: string): string {
    if (text.length < 13) return text
    let pooled = this.strings.get(text)
    if (pooled === undefined) {
      pooled = detachString(text)
      this.strings.set(pooled, pooled)
    }
    return pooled
  }
}
