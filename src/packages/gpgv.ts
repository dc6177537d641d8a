import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AirgapError } from '../errors.js'

/**
 * OpenPGP signatures of package metadata, checked with gpgv against the keys a source names, as apt and dnf check
 * them: detached ones (an apt Release.gpg, an rpm repomd.xml.asc) here, clearsigned InRelease in apt-signature.ts;
 * both judged by judgeGpgvStatus. Keys may be binary keyrings or ASCII-armoured files.
 */

/** Turns ASCII-armoured public keys into binary packets (gpgv reads binary keyrings only). */
export function dearmorKeys(text: string): Buffer {
  const blocks = [
    ...text.matchAll(/-----BEGIN PGP PUBLIC KEY BLOCK-----([\s\S]*?)-----END PGP PUBLIC KEY BLOCK-----/g),
  ]
  if (!blocks.length) throw new AirgapError('E_INPUT', 'no armoured OpenPGP public key block found')
  return Buffer.concat(
    blocks.map((block) => {
      const body = block[1]!.replace(/\r/g, '')
      // Armour headers end at the first empty line; the checksum line starts with `=`.
      const start = body.search(/\n\s*\n/)
      const lines = (start >= 0 ? body.slice(start) : body).split('\n').map((l) => l.trim())
      return Buffer.from(lines.filter((l) => l && !l.startsWith('=')).join(''), 'base64')
    }),
  )
}

/**
 * Verifies a detached signature of `text` with public keys (armoured or binary), as gpgv does for dnf's
 * repo_gpgcheck: at least one good signature by one of the keys and no bad one.
 */
export async function verifyDetachedSignature(
  text: Buffer,
  signature: Buffer,
  keys: string[],
  what: string,
): Promise<string[]> {
  if (!keys.length) throw new AirgapError('E_INPUT', `no key given to verify ${what}`)
  const dir = await mkdtemp(join(tmpdir(), 'aa-rpm-gpgv-'))
  try {
    const keyrings: string[] = []
    for (const [i, key] of keys.entries()) {
      const bytes = await readFile(key).catch((error: NodeJS.ErrnoException) => {
        throw new AirgapError('E_INPUT', `cannot read the key ${key}: ${error.code ?? error.message}`)
      })
      const keyring = join(dir, `key-${i}.gpg`)
      await writeFile(
        keyring,
        bytes.subarray(0, 40).toString('latin1').includes('-----BEGIN PGP')
          ? dearmorKeys(bytes.toString('utf8'))
          : bytes,
      )
      keyrings.push(keyring)
    }
    await writeFile(join(dir, 'data'), text)
    await writeFile(join(dir, 'data.asc'), signature)
    const args = ['--status-fd', '1']
    for (const keyring of keyrings) args.push('--keyring', keyring)
    args.push(join(dir, 'data.asc'), join(dir, 'data'))
    const status = await new Promise<string>((resolve, reject) => {
      const child = spawn('gpgv', args, { stdio: ['ignore', 'pipe', 'ignore'] })
      let out = ''
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8')
      })
      child.on('error', (error) =>
        reject(
          new AirgapError('E_ENVIRONMENT', `cannot run gpgv: ${error.message}`, {
            hints: ['Install the Debian package gpgv.'],
          }),
        ),
      )
      child.on('close', () => resolve(out))
    })
    const valid = judgeGpgvStatus(status, keys, what)
    return valid
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * What gpgv's status lines (--status-fd) mean, as apt and dnf read them: accepted when there is at least one good
 * signature (GOODSIG and VALIDSIG) by a key given and no bad, expired or revoked one; signatures by unknown keys are
 * ignored. Returns the fingerprints of the good signatures; otherwise throws E_INTEGRITY saying why.
 */
export function judgeGpgvStatus(status: string, keys: string[], what: string, detail = ''): string[] {
  const lines = status.split('\n')
  const valid = lines.filter((l) => l.startsWith('[GNUPG:] VALIDSIG ')).map((l) => l.split(' ')[2]!)
  const bad = lines.filter((l) => /^\[GNUPG:\] (BADSIG|EXPKEYSIG|REVKEYSIG|EXPSIG) /.test(l))
  const good = lines.some((l) => l.startsWith('[GNUPG:] GOODSIG '))
  if (bad.length || !valid.length || !good) {
    const reason = bad.length
      ? bad.map((l) => l.replace('[GNUPG:] ', '')).join('; ')
      : lines.some((l) => l.includes('NO_PUBKEY'))
        ? `signed only by keys not in ${keys.join(', ')}`
        : lines.some((l) => l.includes('NODATA'))
          ? 'not signed (no signature found)'
          : detail.trim() || 'no valid signature'
    throw new AirgapError('E_INTEGRITY', `${what}: signature verification failed: ${reason}`, {
      data: { keys, status },
      hints: [
        'Check the keyrings given for this source (apt signed-by, rpm gpgkey), or set trusted: true to accept unsigned metadata knowingly.',
      ],
    })
  }
  return valid
}
