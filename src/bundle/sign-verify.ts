/**
 * Checks bundle.json's signature before anything else in the bundle is trusted, with gpgv (the verifier apt uses) on
 * the exact bytes read by sign-head.ts.
 *
 * - With trusted keys (`verify --key`, `install --key`): the signature must be good and made by one of them. No
 *   signature is E_SIGNATURE_MISSING; a good signature by another key E_SIGNATURE_UNTRUSTED; a signature that does
 *   not match bundle.json E_SIGNATURE_INVALID.
 * - Without keys: a signed bundle's signature must still match bundle.json, checked with the public key bundle.json
 *   names (a consistency check: it proves bundle.json was not changed after signing, not who signed it), by Node
 *   itself for ed25519 signatures (sign-openpgp.ts), so it needs no GnuPG on the site. A bundle
 *   whose bundle.json names a signature it does not carry is E_SIGNATURE_MISSING. An unsigned bundle passes, with a
 *   W_BUNDLE_UNSIGNED warning.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AirgapError } from '../errors.js'
import { type EventSink, logEvent } from '../events/types.js'
import { dearmorKeys } from '../packages/gpgv.js'
import { BUNDLE_JSON, BUNDLE_SIGNATURE } from './layout.js'
import type { BundleSignature } from './metadata.js'
import type { BundleHead } from './sign-head.js'
import { checkEd25519Signature } from './sign-openpgp.js'
import { readSignaturePacket } from './sign-packet.js'

export interface SignatureCheck {
  signed: boolean
  /** The fingerprint of the key whose good signature was found. */
  fingerprint?: string
  /** True when that key is one of the trusted keys given; false when only checked with the key bundle.json names. */
  trusted: boolean
}

export interface CheckSignatureOptions {
  /** Public key files (binary or ASCII-armoured) whose signature is trusted; empty: only check consistency. */
  keys?: string[]
  /** The bundle, for messages. */
  path: string
  sink: EventSink
}

export async function checkBundleSignature(
  head: BundleHead,
  options: CheckSignatureOptions,
): Promise<SignatureCheck> {
  const keys = options.keys ?? []
  const claim = readClaim(head.bundleJson)
  const where = options.path
  if (!head.signature) {
    if (keys.length || claim) {
      throw new AirgapError(
        'E_SIGNATURE_MISSING',
        claim
          ? `${where}: ${BUNDLE_JSON} says it is signed by ${claim.fingerprint}, but the bundle has no ${BUNDLE_SIGNATURE} right after it.`
          : `${where} is not signed (no ${BUNDLE_SIGNATURE}), and a signature by a trusted key was required (--key).`,
        {
          hints: claim
            ? ['The signature was removed: get the bundle again from its release source.']
            : [
                'Ask the release team for a signed bundle (astrago-airgap bundle signs by default), or leave out --key to accept an unsigned one knowingly.',
              ],
          data: { bundle: where },
        },
      )
    }
    options.sink.emit(
      logEvent(
        'W_BUNDLE_UNSIGNED',
        `${where} is not signed: nothing proves who made its ${BUNDLE_JSON} (give --key to require a signature).`,
        { bundle: where },
      ),
    )
    return { signed: false, trusted: false }
  }

  if (keys.length) {
    const status = await gpgvStatus(head, keys)
    if (status.good) return { signed: true, fingerprint: status.good, trusted: true }
    if (status.bad) throw invalid(where, 'it does not match its signature')
    if (status.keyProblem)
      throw new AirgapError(
        'E_SIGNATURE_UNTRUSTED',
        `${where}: ${BUNDLE_JSON} is signed by a trusted key that has expired or was revoked (${status.keyProblem}).`,
        { hints: ['Get the current release key from the release team.'], data: { bundle: where, keys } },
      )
    if (!status.noPubkey) throw invalid(where, `gpgv could not read ${BUNDLE_SIGNATURE} (${status.summary})`)
    // Not by a trusted key: say whether it is at least a good signature by the key bundle.json names.
    const issuer = readSignaturePacket(head.signature)?.issuer ?? 'an unknown key'
    if (claim && (await checkAgainstClaim(head, claim)) === 'bad')
      throw invalid(where, 'it does not match its signature')
    throw new AirgapError(
      'E_SIGNATURE_UNTRUSTED',
      `${where}: ${BUNDLE_JSON} is signed by ${issuer}, which is none of the trusted keys (${keys.join(', ')}).`,
      {
        hints: [
          'Get the release key of whoever made this bundle and pass it with --key, or get the bundle from your release source.',
        ],
        data: { bundle: where, signer: issuer, keys },
      },
    )
  }

  if (!claim) throw invalid(where, `it has a ${BUNDLE_SIGNATURE} but no longer names the key that signed it`)
  const good = await checkAgainstClaim(head, claim)
  if (good === 'bad') throw invalid(where, 'it does not match its signature')
  if (good !== claim.fingerprint.toUpperCase())
    throw invalid(where, `its signature was not made by the key it names (${claim.fingerprint})`)
  options.sink.emit(
    logEvent(
      'I_BUNDLE_SIGNED',
      `${BUNDLE_JSON} is signed by ${good} and matches its signature; the key is not checked against a trusted one (give --key for that).`,
      { bundle: where, fingerprint: good },
    ),
  )
  return { signed: true, fingerprint: good, trusted: false }
}

/**
 * The consistency check without trusted keys: the signature against the public key bundle.json names. An ed25519
 * signature (what `bundle` makes) is checked by Node itself, so a site with only the self-contained installer and no
 * GnuPG checks it too; any other kind goes to gpgv. Returns the signer's fingerprint, 'bad', or 'other' when the
 * signature was made by another key.
 */
async function checkAgainstClaim(head: BundleHead, claim: BundleSignature): Promise<string> {
  const native = checkEd25519Signature(head.bundleJson, head.signature!, claim.publicKey)
  if (native.result === 'good') return native.fingerprint
  if (native.result === 'bad') return 'bad'
  if (native.result === 'other-key') return 'other'
  const status = await gpgvStatus(head, [], claim.publicKey)
  return status.bad ? 'bad' : (status.good ?? 'other')
}

function invalid(where: string, why: string): AirgapError {
  return new AirgapError(
    'E_SIGNATURE_INVALID',
    `${where}: ${BUNDLE_JSON} was modified after signing: ${why}.`,
    {
      hints: ['Do not use this bundle: get it again from its release source.'],
      data: { bundle: where },
    },
  )
}

/** The signer bundle.json names, read without trusting anything else in it. */
function readClaim(bundleJson: Buffer): BundleSignature | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(bundleJson.toString('utf8'))
  } catch {
    return undefined
  }
  const signature = (parsed as { signature?: Partial<BundleSignature> } | null)?.signature
  if (
    typeof signature?.fingerprint === 'string' &&
    /^[0-9A-Fa-f]{40,64}$/.test(signature.fingerprint) &&
    typeof signature.publicKey === 'string'
  )
    return signature as BundleSignature
  return undefined
}

interface GpgvStatus {
  /** The primary key fingerprint of a good, valid signature (VALIDSIG), when there is one and no bad one. */
  good?: string
  /** BADSIG: the data does not match the signature. */
  bad: boolean
  /** An expired or revoked key, or an expired signature: the status line. */
  keyProblem?: string
  noPubkey: boolean
  summary: string
}

/** Runs gpgv over bundle.json and its signature with the key files given (or one armoured key), reading --status-fd. */
async function gpgvStatus(head: BundleHead, keyFiles: string[], armoredKey?: string): Promise<GpgvStatus> {
  const dir = await mkdtemp(join(tmpdir(), 'aa-bundle-sig-'))
  try {
    const args = ['--status-fd', '1']
    const keyrings: Buffer[] = []
    for (const file of keyFiles) {
      const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
        throw new AirgapError('E_INPUT', `cannot read the key ${file}: ${error.code ?? error.message}`, {
          hints: ['Give a public key file: `gpg --export FINGERPRINT > key.gpg` (or --armor … > key.asc).'],
        })
      })
      keyrings.push(isArmored(bytes) ? dearmorKeys(bytes.toString('utf8')) : bytes)
    }
    if (armoredKey !== undefined) {
      try {
        keyrings.push(dearmorKeys(armoredKey))
      } catch {
        keyrings.push(Buffer.alloc(0))
      }
    }
    for (const [i, keyring] of keyrings.entries()) {
      const file = join(dir, `key-${i}.gpg`)
      await writeFile(file, keyring)
      args.push('--keyring', file)
    }
    await writeFile(join(dir, BUNDLE_JSON), head.bundleJson)
    await writeFile(join(dir, BUNDLE_SIGNATURE), head.signature!)
    args.push(join(dir, BUNDLE_SIGNATURE), join(dir, BUNDLE_JSON))
    const status = await runGpgv(args)
    const lines = status.split('\n')
    const valid = lines.find((l) => l.startsWith('[GNUPG:] VALIDSIG '))
    const bad = lines.some((l) => l.startsWith('[GNUPG:] BADSIG '))
    const keyProblem = lines.find((l) => /^\[GNUPG:\] (EXPKEYSIG|REVKEYSIG|EXPSIG) /.test(l))
    const good = lines.some((l) => l.startsWith('[GNUPG:] GOODSIG '))
    return {
      ...(valid && good && !bad && !keyProblem ? { good: valid.split(' ').at(-1)!.toUpperCase() } : {}),
      bad,
      ...(keyProblem ? { keyProblem: keyProblem.slice('[GNUPG:] '.length) } : {}),
      noPubkey: lines.some((l) => l.startsWith('[GNUPG:] NO_PUBKEY ')),
      summary:
        lines
          .filter((l) => l.startsWith('[GNUPG:] ') && !l.includes('KEY_CONSIDERED') && !l.includes('NEWSIG'))
          .map((l) => l.slice(9))
          .join('; ') || 'no status',
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function isArmored(bytes: Buffer): boolean {
  return bytes.subarray(0, 64).toString('latin1').includes('-----BEGIN PGP')
}

function runGpgv(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('gpgv', args, {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, LC_ALL: 'C' },
    })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
    })
    child.on('error', (error) =>
      reject(
        new AirgapError('E_ENVIRONMENT', `cannot run gpgv to check ${BUNDLE_SIGNATURE}: ${error.message}`, {
          hints: ['Install gpgv (Debian/Ubuntu: package gpgv; RHEL: gnupg2).'],
        }),
      ),
    )
    child.on('close', () => resolve(out))
  })
}
