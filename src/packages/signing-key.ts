import { existsSync } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import { homedir, hostname } from 'node:os'
import { dirname, join } from 'node:path'
import { AirgapError } from '../errors.js'
import { type AptSigningKey, generateAptSigningKey, readSigningKey, stopGpgAgent } from './apt-signature.js'

/**
 * The key a bundle's bundle.json and package repositories are signed with (bundle.json.sig, apt InRelease, rpm
 * repomd.xml.asc). Nodes trust exactly
 * this key for the bundle's repositories, never `trusted=yes`. By default it is created once per user, in
 * `$XDG_DATA_HOME/astrago-airgap/signing-key` (a GnuPG home), and reused, so a rebuilt bundle signs with the same key
 * and, ed25519 signatures being deterministic, gives the same bytes. A release team passes its own GnuPG home.
 */
export function defaultSigningKeyHome(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'astrago-airgap', 'signing-key')
}

export async function loadSigningKey(home?: string): Promise<AptSigningKey> {
  if (home !== undefined) {
    if (!existsSync(home))
      throw new AirgapError('E_INPUT', `The signing key folder ${home} does not exist.`, {
        hints: [
          'Give a GnuPG home holding one secret signing key, or leave --signing-key out to use the default key.',
        ],
      })
    return readSigningKey(home)
  }
  const fallback = defaultSigningKeyHome()
  if (existsSync(join(fallback, 'pubring.kbx'))) return readSigningKey(fallback)
  // Every bundle signs its bundle.json, so two runs may create the default key at once: each generates into a folder
  // of its own and renames it into place; the one that loses the race uses the winner's key.
  await mkdir(dirname(fallback), { recursive: true })
  const fresh = `${fallback}.new-${process.pid}`
  await rm(fresh, { recursive: true, force: true })
  await generateAptSigningKey({
    homeDir: fresh,
    userId: `astrago-airgap repository signing key (${hostname()}) <airgap@astrago.invalid>`,
  })
  await stopGpgAgent(fresh)
  try {
    await rename(fresh, fallback)
  } catch (error) {
    await rm(fresh, { recursive: true, force: true })
    if (!existsSync(join(fallback, 'pubring.kbx'))) throw error
  }
  return readSigningKey(fallback)
}
