/**
 * Signing bundle.json. Between resolving a bundle and writing it, bundle.json gets the signer (fingerprint and public
 * key) and is signed with a detached OpenPGP signature, the member bundle.json.sig right after it. Everything else a
 * bundle holds is covered by bundle.json's inventory, so this one signature covers the whole bundle.
 *
 * The signature is made at the key's creation time (frozen with --faked-system-time) and ed25519 signatures are
 * deterministic, so the same key and the same bundle.json give the same signature bytes: reproducible bundles stay
 * byte-identical. Its size is known once it is made, before the layout is planned.
 */
import { execFile } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { AirgapError } from '../errors.js'
import { type EventSink, logEvent } from '../events/types.js'
import { type AptSigningKey, exportPublicKey } from '../packages/apt-signature.js'
import { withSigningKey } from '../packages/signing-key.js'
import type { BundleLock } from './bundle-lock.js'
import { BUNDLE_JSON, BUNDLE_SIGNATURE } from './layout.js'
import { type BundleMetadata, serializeBundleJson } from './metadata.js'
import { bytesMember } from './plan-layout.js'

/** The lock with bundle.json naming its signer, followed by its signature member. */
export async function signLock(lock: BundleLock, key: AptSigningKey): Promise<BundleLock> {
  const [first, ...rest] = lock.members
  if (first?.path !== BUNDLE_JSON) throw new Error(`the first member of a lock must be ${BUNDLE_JSON}`)
  const publicKey = (await exportPublicKey(key, true)).toString('utf8')
  const metadata: BundleMetadata = {
    ...lock.metadata,
    signature: { member: BUNDLE_SIGNATURE, fingerprint: key.fingerprint, publicKey },
  }
  const bundleJson = serializeBundleJson(metadata)
  const signature = await detachSignBinary(key, bundleJson)
  return {
    ...lock,
    metadata,
    members: [bytesMember(BUNDLE_JSON, bundleJson), bytesMember(BUNDLE_SIGNATURE, signature), ...rest],
  }
}

/** A binary detached signature (what `gpg --detach-sign` writes), made at the key's creation time. */
async function detachSignBinary(key: AptSigningKey, data: Buffer): Promise<Buffer> {
  const when = Math.floor(key.created.getTime() / 1000)
  const args = [
    '--batch',
    '--no-tty',
    '--quiet',
    '--homedir',
    key.homeDir,
    '--faked-system-time',
    `${when}!`,
    '--digest-algo',
    'SHA512',
    '--local-user',
    key.fingerprint,
    '--detach-sign',
    '--output',
    '-',
  ]
  return await new Promise<Buffer>((resolve, reject) => {
    const child = execFile(
      'gpg',
      args,
      {
        encoding: 'buffer',
        maxBuffer: 1 << 20,
        env: { ...process.env, GNUPGHOME: key.homeDir, LC_ALL: 'C' },
      },
      (error, stdout, stderr) => {
        if (error) {
          const missing = (error as NodeJS.ErrnoException).code === 'ENOENT'
          reject(
            new AirgapError(
              'E_ENVIRONMENT',
              missing
                ? 'cannot run gpg to sign bundle.json'
                : `gpg could not sign ${BUNDLE_JSON} with ${key.fingerprint}: ${stderr.toString('utf8').trim()}`,
              {
                cause: error,
                hints: missing
                  ? ['Install the Debian package gpg.']
                  : [
                      'Check the GnuPG home given with --signing-key: it must hold a secret key without a passphrase.',
                    ],
                data: { homeDir: key.homeDir },
              },
            ),
          )
          return
        }
        resolve(stdout)
      },
    )
    child.stdin?.end(data)
  })
}

/**
 * Signs the lock's bundle.json with the GnuPG home `home` (`bundle --signing-key`), or without one with the key that
 * signs the package repositories by default (created once per user, see src/packages/signing-key.ts). Without
 * `home` on a machine that has no gpg (the self-contained installer alone), the bundle stays unsigned, with a
 * W_BUNDLE_NOT_SIGNED warning: a key that was asked for is required, a default one is not.
 */
export async function signLockWithKeyHome(
  lock: BundleLock,
  home: string | undefined,
  sink: EventSink,
): Promise<BundleLock> {
  if (home === undefined && !onPath('gpg')) {
    sink.emit(
      logEvent(
        'W_BUNDLE_NOT_SIGNED',
        `gpg is not installed: ${BUNDLE_JSON} is left unsigned (install gpg, or give --signing-key, to sign it).`,
      ),
    )
    return lock
  }
  return await withSigningKey(home, (key) => signLock(lock, key))
}

function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    try {
      accessSync(join(dir, command), constants.X_OK)
      return true
    } catch {}
  }
  return false
}
