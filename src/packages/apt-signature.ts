import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AirgapError } from '../errors.js'
import { judgeGpgvStatus } from './gpgv.js'

/**
 * OpenPGP for apt repositories, through GnuPG (Debian packages gpgv and gpg): verifying an upstream InRelease with a
 * keyring, generating the bundle's signing key, clearsigning our InRelease. apt itself verifies with gpgv, so this is
 * the same judgement apt makes.
 */

interface RunResult {
  code: number
  stdout: Buffer
  stderr: string
  status: string
}

function run(
  command: string,
  args: string[],
  options: { input?: Buffer | string; env?: NodeJS.ProcessEnv; statusFd?: boolean } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const stdio: Array<'pipe' | 'ignore'> = ['pipe', 'pipe', 'pipe']
    if (options.statusFd) stdio.push('pipe')
    const child = spawn(command, args, { stdio, env: options.env ?? process.env })
    const out: Buffer[] = []
    const err: Buffer[] = []
    const status: Buffer[] = []
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr!.on('data', (chunk: Buffer) => err.push(chunk))
    if (options.statusFd)
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => status.push(chunk))
    child.on('error', (error) =>
      reject(
        new AirgapError('E_ENVIRONMENT', `cannot run ${command}: ${error.message}`, {
          cause: error,
          hints: [`Install the Debian package that provides ${command} (gpgv, gpg).`],
        }),
      ),
    )
    child.on('close', (code) =>
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
        status: Buffer.concat(status).toString('utf8'),
      }),
    )
    child.stdin!.on('error', () => {})
    child.stdin!.end(options.input ?? '')
  })
}

export interface VerifiedSignature {
  /** The signed text, without the OpenPGP armour. */
  text: string
  /** Fingerprints of the keys whose signatures were good. */
  fingerprints: string[]
}

/**
 * Verifies a clearsigned document (InRelease) with the given keyrings (binary `.gpg` keyrings, as
 * /usr/share/keyrings/debian-archive-keyring.gpg) and returns the signed text. Accepted, as apt accepts it: at least
 * one good signature (VALIDSIG) from a key in the keyrings and no bad one; signatures by unknown keys are ignored;
 * expired or revoked keys do not count.
 */
export async function verifyClearsigned(
  document: Buffer | string,
  keyrings: string[],
  what = 'InRelease',
): Promise<VerifiedSignature> {
  if (!keyrings.length) throw new AirgapError('E_INPUT', `no keyring given to verify ${what}`)
  const args = ['--status-fd', '3', '--output', '-']
  for (const keyring of keyrings) args.push('--keyring', keyring)
  args.push('-')
  const result = await run('gpgv', args, { input: document, statusFd: true })
  const valid = judgeGpgvStatus(result.status, keyrings, what, result.stderr)
  return { text: result.stdout.toString('utf8'), fingerprints: valid }
}

/** Returns the text inside a clearsigned message without checking anything (for `trusted: true` sources). */
export function stripClearsign(document: string): string {
  const begin = document.indexOf('-----BEGIN PGP SIGNED MESSAGE-----')
  if (begin < 0) return document
  const afterHeaders = document.indexOf('\n\n', begin)
  const end = document.indexOf('\n-----BEGIN PGP SIGNATURE-----', afterHeaders)
  if (afterHeaders < 0 || end < 0) throw new AirgapError('E_INPUT', 'malformed clearsigned document')
  return `${document
    .slice(afterHeaders + 2, end)
    .split('\n')
    .map((line) => (line.startsWith('- ') ? line.slice(2) : line))
    .join('\n')}\n`
}

export interface AptSigningKey {
  /** GnuPG home directory holding the secret key. */
  homeDir: string
  fingerprint: string
  /** Key creation time. */
  created: Date
}

export interface GenerateAptSigningKeyOptions {
  homeDir: string
  /** User ID, e.g. `Astrago bundle demo-0.1.0 <airgap@astrago.invalid>`. */
  userId: string
  /** Creation time written into the key (default: now). Signatures can only be made at or after it. */
  created?: Date
}

function gpgEnv(homeDir: string): NodeJS.ProcessEnv {
  return { ...process.env, GNUPGHOME: homeDir, LC_ALL: 'C' }
}

async function gpg(homeDir: string, args: string[], input?: Buffer | string): Promise<RunResult> {
  const result = await run('gpg', ['--batch', '--no-tty', '--quiet', '--homedir', homeDir, ...args], {
    input,
    env: gpgEnv(homeDir),
  })
  if (result.code !== 0)
    throw new AirgapError('E_ENVIRONMENT', `gpg ${args[0]} failed: ${result.stderr.trim()}`, {
      data: { homeDir },
    })
  return result
}

/** Generates an ed25519 signing key (no passphrase) in a GnuPG home directory for the bundle repository. */
export async function generateAptSigningKey(options: GenerateAptSigningKeyOptions): Promise<AptSigningKey> {
  const created = options.created ?? new Date()
  const epoch = Math.floor(created.getTime() / 1000)
  await run('mkdir', ['-p', '-m', '700', options.homeDir])
  await gpg(options.homeDir, [
    '--faked-system-time',
    `${epoch}!`,
    '--passphrase',
    '',
    '--pinentry-mode',
    'loopback',
    '--quick-gen-key',
    options.userId,
    'ed25519',
    'sign',
    'never',
  ])
  const key = await readSigningKey(options.homeDir)
  return key
}

/** The (first) secret signing key of a GnuPG home directory. */
export async function readSigningKey(homeDir: string): Promise<AptSigningKey> {
  const listing = (await gpg(homeDir, ['--with-colons', '--list-secret-keys'])).stdout.toString('utf8')
  const lines = listing.split('\n')
  const sec = lines.findIndex((l) => l.startsWith('sec:'))
  const fpr = lines.slice(sec + 1).find((l) => l.startsWith('fpr:'))
  if (sec < 0 || !fpr) throw new AirgapError('E_INPUT', `no secret key in ${homeDir}`)
  return {
    homeDir,
    fingerprint: fpr.split(':')[9]!,
    created: new Date(Number(lines[sec]!.split(':')[5]) * 1000),
  }
}

/** The public key, binary (for apt's `signed-by`, a `.gpg` file) or ASCII-armoured (`.asc`). */
export async function exportPublicKey(key: AptSigningKey, armor = false): Promise<Buffer> {
  return (await gpg(key.homeDir, [...(armor ? ['--armor'] : []), '--export', key.fingerprint])).stdout
}

/**
 * Clearsigns `text` (a Release file) with the key. The signature time is `at` (or the key's creation time if later),
 * frozen with --faked-system-time, so with ed25519's deterministic signatures the output is byte-identical on reruns.
 */
export async function clearsign(key: AptSigningKey, text: string, at: Date): Promise<string> {
  const when = Math.floor(Math.max(at.getTime(), key.created.getTime()) / 1000)
  const dir = await mkdtemp(join(tmpdir(), 'aa-sign-'))
  try {
    const input = join(dir, 'Release')
    const output = join(dir, 'InRelease')
    await writeFile(input, text)
    await gpg(key.homeDir, [
      '--faked-system-time',
      `${when}!`,
      '--digest-algo',
      'SHA512',
      '--local-user',
      key.fingerprint,
      '--output',
      output,
      '--clearsign',
      input,
    ])
    return await readFile(output, 'utf8')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Detached armoured signature (Release.gpg), for old clients. */
export async function detachSign(key: AptSigningKey, text: string, at: Date): Promise<string> {
  const when = Math.floor(Math.max(at.getTime(), key.created.getTime()) / 1000)
  return (
    await gpg(
      key.homeDir,
      [
        '--faked-system-time',
        `${when}!`,
        '--digest-algo',
        'SHA512',
        '--local-user',
        key.fingerprint,
        '--armor',
        '--detach-sign',
        '--output',
        '-',
      ],
      text,
    )
  ).stdout.toString('utf8')
}

/** Stops the gpg-agent started for a GnuPG home directory (call when done with a temporary key). */
export async function stopGpgAgent(homeDir: string): Promise<void> {
  await run('gpgconf', ['--homedir', homeDir, '--kill', 'gpg-agent'], { env: gpgEnv(homeDir) }).catch(
    () => undefined,
  )
}
