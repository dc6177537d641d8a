/**
 * The names src/push/push-bundle.ts imports from here, re-exported from their homes until its imports move there
 * (then this file goes): existence checks and mounts (push-checks.ts), manifest puts (put-manifest.ts) and blob
 * uploads (upload-blob.ts). Everything else imports from those files.
 */

export { blobExists, manifestDigest, mountBlob } from './push-checks.js'
export { putManifest } from './put-manifest.js'
export { type UploadNotice, uploadBlob } from './upload-blob.js'
