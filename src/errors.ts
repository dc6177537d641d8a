/**
 * The one error type of astrago-airgap. Core code throws it with a stable code; only the command base class turns it
 * into a message and an exit code. Exit codes are a documented table (docs/exit-codes.md), so scripts can branch on
 * them.
 */
export const EXIT_CODES = {
  /** Anything not classified below: a bug, or a failure we did not anticipate. */
  E_INTERNAL: 1,
  /** Bad flags or arguments. */
  E_USAGE: 2,
  /** A bundle definition, site values file or other input document is invalid. */
  E_INPUT: 3,
  /** A remote server (registry, chart repository, file URL) refused or failed. */
  E_REMOTE: 4,
  /** Credentials were missing or refused. */
  E_AUTH: 5,
  /** Content did not match its digest, or a bundle member is missing or truncated. */
  E_INTEGRITY: 6,
  /** The local machine cannot do the job: disk full, port in use, missing tool. */
  E_ENVIRONMENT: 7,
  /** The Kubernetes cluster refused, or a stage did not become ready in time. */
  E_CLUSTER: 8,
  /** A trusted key was required (`--key`) but the bundle has no signature, or bundle.json names one that is missing. */
  E_SIGNATURE_MISSING: 10,
  /** bundle.json is signed, correctly, but by none of the keys given with `--key`. */
  E_SIGNATURE_UNTRUSTED: 11,
  /** The signature does not match bundle.json: bundle.json (or its signature) was modified after signing. */
  E_SIGNATURE_INVALID: 12,
  /** The user interrupted the run (Ctrl-C); rerunning resumes. */
  E_INTERRUPTED: 130,
} as const

export type ErrorCode = keyof typeof EXIT_CODES

export interface AirgapErrorOptions {
  /** What the user can do about it, one suggestion per entry. */
  hints?: string[]
  cause?: unknown
  /** Structured facts for --json output (never secrets). */
  data?: Record<string, unknown>
}

export class AirgapError extends Error {
  readonly code: ErrorCode
  readonly hints: string[]
  readonly data: Record<string, unknown> | undefined

  constructor(code: ErrorCode, message: string, options: AirgapErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AirgapError'
    this.code = code
    this.hints = options.hints ?? []
    this.data = options.data
  }

  get exitCode(): number {
    return EXIT_CODES[this.code]
  }
}

export function isAirgapError(error: unknown): error is AirgapError {
  return error instanceof AirgapError
}

/** Wraps anything thrown into an AirgapError, keeping the original as the cause. */
export function toAirgapError(error: unknown): AirgapError {
  if (isAirgapError(error)) return error
  if (error instanceof Error && error.name === 'AbortError') {
    return new AirgapError('E_INTERRUPTED', 'Interrupted; run the same command again to resume.', {
      cause: error,
    })
  }
  const message = error instanceof Error ? error.message : String(error)
  return new AirgapError('E_INTERNAL', message, { cause: error })
}
