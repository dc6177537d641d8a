import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AirgapError } from '../errors.js'

/**
 * Package signatures of an rpm source that signs its packages instead of its metadata (`signed: packages`): every
 * .rpm must carry a good signature by one of the source's keys, as dnf's `gpgcheck=1` would demand on the node. rpm's
 * own `rpmkeys --checksig` decides, against a throw-away rpm database holding only those keys; a package that is
 * unsigned, signed by another key or altered fails with its name.
 */
export interface RpmSignatureCheck {
  /** Local file of the package. */
  file: string
  /** What to call it in an error, e.g. `nfs-utils 2.5.4-26.el9 (x86_64)`. */
  label: string
}

const BATCH = 200

function run(command: string, args: string[], input?: Buffer): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    })
    let output = ''
    child.stdout.on('data', (d: Buffer) => {
      output += d
    })
    child.stderr.on('data', (d: Buffer) => {
      output += d
    })
    child.on('error', (error) =>
      reject(
        new AirgapError('E_ENVIRONMENT', `cannot run ${command}: ${error.message}`, {
          hints: [
            "Install rpm (Debian's rpm package provides rpmkeys) on the machine that makes the bundle.",
          ],
        }),
      ),
    )
    child.on('close', (code) => resolve({ code: code ?? 1, output }))
    child.stdin.end(input)
  })
}

/** The keys of each keyring file as ASCII armour, which `rpmkeys --import` takes (binary keyrings via gpg). */
async function armouredKeys(keyrings: string[], work: string): Promise<Buffer[]> {
  const out: Buffer[] = []
  for (const [i, keyring] of keyrings.entries()) {
    const bytes = await readFile(keyring)
    if (bytes.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
      out.push(bytes)
      continue
    }
    const home = join(work, `gnupg-${i}`)
    await mkdir(home, { mode: 0o700 })
    const gpg = (args: string[], input?: Buffer) =>
      run('gpg', ['--batch', '--no-tty', '--quiet', '--homedir', home, ...args], input)
    const imported = await gpg(['--import'], bytes)
    const exported = await gpg(['--armor', '--export'])
    await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'])
    if (imported.code !== 0 || !exported.output.includes('BEGIN PGP PUBLIC KEY BLOCK'))
      throw new AirgapError('E_INPUT', `${keyring} holds no OpenPGP public key: ${imported.output.trim()}`)
    out.push(Buffer.from(exported.output))
  }
  return out
}

export async function checkRpmSignatures(
  packages: RpmSignatureCheck[],
  keyrings: string[],
  repository: string,
): Promise<void> {
  if (packages.length === 0) return
  const work = await mkdtemp(join(tmpdir(), 'astrago-rpmkeys-'))
  try {
    const db = join(work, 'rpmdb')
    await mkdir(db)
    for (const [i, key] of (await armouredKeys(keyrings, work)).entries()) {
      const file = join(work, `key-${i}.asc`)
      await writeFile(file, key)
      const imported = await run('rpmkeys', ['--dbpath', db, '--import', file])
      if (imported.code !== 0)
        throw new AirgapError('E_INPUT', `rpm cannot use the key ${keyrings[i]}: ${imported.output.trim()}`)
    }
    for (let at = 0; at < packages.length; at += BATCH) {
      const batch = packages.slice(at, at + BATCH)
      const checked = await run('rpmkeys', ['--dbpath', db, '--checksig', ...batch.map((p) => p.file)])
      // One line per file: "<file>: digests signatures OK" when signed by a known key and intact.
      for (const pkg of batch) {
        const line = checked.output.split('\n').find((l) => l.startsWith(`${pkg.file}:`)) ?? ''
        if (/: digests signatures OK$/.test(line.trim())) continue
        const verdict = line.slice(pkg.file.length + 1).trim() || checked.output.trim()
        throw new AirgapError(
          'E_INTEGRITY',
          `The package ${pkg.label} of ${repository} is not signed by the source's keys (rpmkeys: ${/signatures/i.test(verdict) ? verdict : `${verdict}, no signature`}).`,
          {
            hints: [
              `Check the keyrings of ${repository} (the distribution's RPM-GPG-KEY files), and that the mirror serves the distribution's own packages.`,
            ],
            data: { package: pkg.label, repository },
          },
        )
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
