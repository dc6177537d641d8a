import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { homedir, hostname, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { AirgapError } from '../errors.js'
import { type AptSigningKey, generateAptSigningKey, readSigningKey, stopGpgAgent } from './apt-signature.js'

/**
 * The key a bundle's bundle.json and package repositories are signed with (bundle.json.sig, apt InRelease, rpm
 * repomd.xml.asc). Nodes trust exactly
 * this key for the bundle's repositories, never `trusted=yes`. By default it is created once per user, in
 * `$XDG_DATA_HOME/astrago-airgap/signing-key` (a GnuPG home), and reused, so a rebuilt bundle signs with the same key
 * and, ed25519 signatures being deterministic, gives the same bytes. A release team passes its own GnuPG home.
 *
 * No gpg-agent ever runs in that home: several `bundle` runs may share it at once, and one stopping the agent when it
 * is done would break the others' signing. Each run signs in a private copy of the key material instead.
 */
export function defaultSigningKeyHome(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'astrago-airgap', 'signing-key')
}

/** What a GnuPG home holds of its keys (and the options that shape a signature); the rest (agent, locks) is not copied. */
const KEY_MATERIAL = [
  'pubring.kbx',
  'pubring.gpg',
  'secring.gpg',
  'trustdb.gpg',
  'gpg.conf',
  'private-keys-v1.d',
]

/**
 * Runs `use` with the signing key of the GnuPG home `home` (`--signing-key`), or of the user's default home, created
 * on first use. The key is a private copy in a temporary GnuPG home of this run; its agent is stopped and the copy
 * removed when `use` ends, also when it fails. The key material is the same, so the signatures are the same bytes.
 */
export async function withSigningKey<T>(
  home: string | undefined,
  use: (key: AptSigningKey) => Promise<T>,
): Promise<T> {
  const source = home === undefined ? await defaultSigningKeyHomeCreated() : givenSigningKeyHome(home)
  // Short, under the temporary folder: the agent's socket path has a length limit. mkdtemp makes it mode 0700.
  const copy = await mkdtemp(join(tmpdir(), 'aa-gpg-'))
  try {
    for (const name of KEY_MATERIAL)
      if (existsSync(join(source, name))) await cp(join(source, name), join(copy, name), { recursive: true })
    return await use(await readSigningKey(copy))
  } finally {
    await stopGpgAgent(copy)
    await rm(copy, { recursive: true, force: true })
  }
}

function givenSigningKeyHome(home: string): string {
  if (!existsSync(home))
    throw new AirgapError('E_INPUT', `The signing key folder ${home} does not exist.`, {
      hints: [
        'Give a GnuPG home holding one secret signing key, or leave --signing-key out to use the default key.',
      ],
    })
  return home
}

async function defaultSigningKeyHomeCreated(): Promise<string> {
  const fallback = defaultSigningKeyHome()
  if (existsSync(join(fallback, 'pubring.kbx'))) return fallback
  // Two runs may create the default key at once: each generates into a folder of its own and renames it into place;
  // the one that loses the race uses the winner's key.
  await mkdir(dirname(fallback), { recursive: true })
  const fresh = `${fallback}.new-${process.pid}`
  await rm(fresh, { recursive: true, force: true })
  try {
    await generateAptSigningKey({
      homeDir: fresh,
      userId: `astrago-airgap repository signing key (${hostname()}) <airgap@astrago.invalid>`,
    })
  } finally {
    await stopGpgAgent(fresh)
  }
  try {
    await rename(fresh, fallback)
  } catch (error) {
    await rm(fresh, { recursive: true, force: true })
    if (!existsSync(join(fallback, 'pubring.kbx'))) throw error
  }
  return fallback
}
