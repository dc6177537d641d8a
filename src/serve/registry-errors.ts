/**
 * Errors of the OCI distribution API: a code from the spec's list, the HTTP status that goes with it, a message for
 * people and an optional detail for programs. They become `{"errors":[{code, message, detail}]}` bodies.
 */
export const REGISTRY_ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  RANGE_INVALID: 416,
  TOOMANYREQUESTS: 429,
  UNKNOWN: 500,
} as const

export type RegistryErrorCode = keyof typeof REGISTRY_ERROR_STATUS

export class RegistryError extends Error {
  readonly status: number

  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly detail?: unknown,
    status?: number,
  ) {
    super(message)
    this.name = 'RegistryError'
    this.status = status ?? REGISTRY_ERROR_STATUS[code]
  }

  body(): string {
    return JSON.stringify({
      errors: [
        {
          code: this.code,
          message: this.message,
          ...(this.detail === undefined ? {} : { detail: this.detail }),
        },
      ],
    })
  }
}
