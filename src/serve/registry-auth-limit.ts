/**
 * How often one client address may fail to authenticate to the site registry: after `failures` failed attempts
 * within `windowMs`, its credentials are not checked any more (429 with Retry-After) until the oldest of those
 * failures leaves the window. Each check of an unknown password costs a bcrypt computation, so without a limit one
 * client guessing passwords could keep the server's CPU busy. The table of addresses is bounded; the least recently
 * failing address is dropped first.
 */
export interface FailedAuthLimit {
  /** Failed attempts allowed per address within the window (default 10). */
  failures?: number
  /** The window in milliseconds (default one minute). */
  windowMs?: number
}

const MAX_ADDRESSES = 10_000

export class FailedAuthLimiter {
  private readonly failures: number
  private readonly windowMs: number
  /** address → times of its recent failures, oldest first. */
  private readonly clients = new Map<string, number[]>()

  constructor(limit: FailedAuthLimit = {}) {
    this.failures = Math.max(1, limit.failures ?? 10)
    this.windowMs = Math.max(1, limit.windowMs ?? 60_000)
  }

  /** Seconds the address must wait before its credentials are checked again, or undefined when it may try now. */
  retryAfter(address: string, now = Date.now()): number | undefined {
    const times = this.recent(address, now)
    if (times.length < this.failures) return undefined
    return Math.max(1, Math.ceil((times[times.length - this.failures]! + this.windowMs - now) / 1000))
  }

  /**
   * Records an attempt as failed before its check runs, so parallel guesses count at once; returns its mark, for
   * `succeeded` to take it back.
   */
  fail(address: string, now = Date.now()): number {
    const times = this.recent(address, now)
    times.push(now)
    this.clients.delete(address)
    if (this.clients.size >= MAX_ADDRESSES) this.clients.delete(this.clients.keys().next().value!)
    this.clients.set(address, times.slice(-this.failures))
    return now
  }

  /** Takes back the failure `fail` recorded for an attempt that turned out good. */
  succeeded(address: string, mark: number): void {
    const times = this.clients.get(address)
    const at = times?.lastIndexOf(mark) ?? -1
    if (at >= 0) times!.splice(at, 1)
  }

  private recent(address: string, now: number): number[] {
    const times = (this.clients.get(address) ?? []).filter((t) => t > now - this.windowMs)
    if (!times.length) this.clients.delete(address)
    return times
  }
}
