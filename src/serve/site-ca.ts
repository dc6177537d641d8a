import {
  createPrivateKey,
  type KeyObject,
  X509Certificate as NodeX509Certificate,
  randomBytes,
  type webcrypto,
} from 'node:crypto'
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises'
import { isIP } from 'node:net'
import { dirname, join } from 'node:path'
import { inspect } from 'node:util'
import { AirgapError } from '../errors.js'
import { leftTemporaries, removeLeftTemporaries, replaceFile } from '../fs/replace-file.js'

/**
 * The site CA: generated once per site (ECDSA P-256) and kept in a state folder as `ca.crt` and `private/ca.key` (mode 0600),
 * or given by the site as a CA certificate and key. It issues the certificate of the site server (registry and file
 * server on one port) for the names and addresses nodes use to reach it. Nodes trust the CA, never the server
 * certificate, so the server certificate can be reissued on every start without touching the nodes.
 *
 * Private keys never reach logs, events or --json output: the objects that hold one print and serialise without it.
 */
export const CA_CERT_FILE = 'ca.crt'
/** In a folder of its own, so the CA folder can be handed to tools that take a certificate folder (skopeo --cert-dir). */
export const CA_KEY_FILE = 'private/ca.key'
/** Where earlier versions kept the key (moved to CA_KEY_FILE on first use). */
const OLD_CA_KEY_FILE = 'ca.key'

export interface SiteCa {
  /** The CA certificate (PEM, ends with a newline): what nodes install into their trust stores. */
  certPem: string
  /** SHA-256 fingerprint as openssl prints it (AB:CD:…), for a field engineer to compare. */
  fingerprint: string
  subject: string
  notAfter: Date
  /** True when this call generated the CA (first run on a site). */
  created: boolean
  /** The state folder it lives in, when it was loaded from or created in one. */
  dir?: string
  /** The signing key. Not enumerable: never serialised or printed. */
  readonly privateKey: CryptoKey
}

export interface ServerCertificate {
  certPem: string
  /** Not enumerable: never serialised or printed. Read it explicitly to hand it to the TLS server. */
  readonly keyPem: string
  hosts: string[]
  notAfter: Date
}

export interface IssueServerCertificateOptions {
  /** DNS names and IP addresses the server is reached at; each becomes a subjectAltName. */
  hosts: string[]
  /** Validity in days (default 825). */
  days?: number
}

type CryptoKey = webcrypto.CryptoKey
type EcdsaParams = webcrypto.EcdsaParams
type EcKeyAlgorithm = webcrypto.EcKeyAlgorithm

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const
const CA_DAYS = 3650
const DAY_MS = 86_400_000
/** Certificates start a little in the past, so a node whose clock is slightly behind still accepts them. */
const BACKDATE_MS = 3_600_000

type X509Module = typeof import('@peculiar/x509')
let x509Module: Promise<X509Module> | undefined

/** @peculiar/x509 registers its algorithms through tsyringe, which needs the Reflect metadata API loaded first. */
async function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    await import('reflect-metadata')
    const module = await import('@peculiar/x509')
    module.cryptoProvider.set(globalThis.crypto)
    return module
  })()
  return await x509Module
}

/**
 * The CA of this site: loaded from `dir` when it holds one, else generated and saved there (`ca.crt`, and
 * `private/ca.key` with mode 0600 in a 0700 folder). A later run reuses it, so nodes set up once keep trusting the server.
 */
export async function loadOrCreateSiteCa(
  dir: string,
  options: { commonName?: string } = {},
): Promise<SiteCa> {
  const certFile = join(dir, CA_CERT_FILE)
  const keyFile = join(dir, CA_KEY_FILE)
  await moveOldKey(dir)
  await finishInterruptedCreation(certFile, keyFile)
  const [certPem, keyPem] = await Promise.all([readOptional(certFile), readOptional(keyFile)])
  if (certPem !== undefined && keyPem !== undefined) {
    await tightenKeyMode(keyFile)
    const ca = await loadSiteCa({ certPem, keyPem, source: dir })
    return withDir(ca, dir)
  }
  if (certPem !== undefined || keyPem !== undefined) {
    const [has, missing] = certPem !== undefined ? [certFile, keyFile] : [keyFile, certFile]
    throw new AirgapError(
      'E_INPUT',
      `The site CA in ${dir} is incomplete: ${has} exists but ${missing} does not.`,
      {
        hints: [
          `Restore ${missing} from a backup, or move ${dir} aside to generate a new CA (every node must then be set up again).`,
        ],
      },
    )
  }

  const generated = await generateSiteCa(options.commonName ?? 'astrago-airgap site CA')
  await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 })
  // The key is created with mode 0600 from the start (no window where it is readable) and exclusively: if another run
  // created the CA meanwhile, its CA wins and is loaded instead.
  let handle: Awaited<ReturnType<typeof open>>
  try {
    handle = await open(keyFile, 'wx', 0o600)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return await loadOrCreateSiteCa(dir, options)
    throw new AirgapError(
      'E_ENVIRONMENT',
      `Cannot write the site CA key ${keyFile}: ${(error as Error).message}`,
      {
        cause: error,
      },
    )
  }
  try {
    await handle.writeFile(generated.keyPem)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await replaceFile(certFile, generated.ca.certPem, { mode: 0o644, durable: true })
  return withDir(generated.ca, dir)
}

/**
 * A run killed after writing the key and its certificate's temporary, before the rename, left a whole CA under another
 * name: the temporary whose certificate belongs to the key is put in place. Other temporaries of ended runs are removed.
 */
async function finishInterruptedCreation(certFile: string, keyFile: string): Promise<void> {
  const keyPem = await readOptional(keyFile)
  if (keyPem !== undefined && (await readOptional(certFile)) === undefined) {
    for (const temporary of await leftTemporaries(certFile)) {
      const certPem = await readOptional(temporary)
      const whole = await loadSiteCa({ certPem: certPem ?? '', keyPem, source: temporary }).then(
        () => true,
        () => false,
      )
      if (whole) {
        await rename(temporary, certFile)
        break
      }
    }
  }
  await removeLeftTemporaries(certFile)
}

/** A CA key of an earlier version, beside ca.crt, goes into private/ (mode 0700) where it is kept now. */
async function moveOldKey(dir: string): Promise<void> {
  const old = join(dir, OLD_CA_KEY_FILE)
  if ((await readOptional(old)) === undefined || (await readOptional(join(dir, CA_KEY_FILE))) !== undefined)
    return
  await mkdir(join(dir, dirname(CA_KEY_FILE)), { recursive: true, mode: 0o700 })
  await rename(old, join(dir, CA_KEY_FILE))
}

/** A CA the site brings: its certificate and key (PEM). Checks that they belong together and can sign. */
export async function loadSiteCa(input: {
  certPem: string
  keyPem: string
  source?: string
}): Promise<SiteCa> {
  const where = input.source ? ` (${input.source})` : ''
  const certificate = parseCertificate(input.certPem, `The CA certificate${where}`)
  const key = parsePrivateKey(input.keyPem, `The CA key${where}`)
  if (!certificate.checkPrivateKey(key)) {
    throw new AirgapError(
      'E_INPUT',
      `The CA key${where} does not belong to the CA certificate ${certificate.subject}.`,
      {
        hints: ['Give the key that was generated together with this certificate.'],
      },
    )
  }
  if (!certificate.ca) {
    throw new AirgapError(
      'E_INPUT',
      `The certificate ${certificate.subject}${where} is not a CA certificate.`,
      {
        hints: [
          'A server certificate can be given as the server certificate and key instead; the site CA must have basicConstraints CA:TRUE.',
        ],
      },
    )
  }
  checkValidity(certificate, `The CA certificate${where}`)
  const privateKey = await importSigningKey(key)
  return makeSiteCa({
    certPem: toPem(certificate),
    fingerprint: certificate.fingerprint256,
    subject: certificate.subject,
    notAfter: new Date(certificate.validTo),
    created: false,
    privateKey,
  })
}

/**
 * A server certificate for `hosts`, signed by the site CA: subjectAltNames for every DNS name and IP address,
 * serverAuth, and a fresh P-256 key.
 */
export async function issueServerCertificate(
  ca: SiteCa,
  options: IssueServerCertificateOptions,
): Promise<ServerCertificate> {
  const x509 = await loadX509()
  const hosts = normalizeHosts(options.hosts)
  const days = options.days ?? 825
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new AirgapError('E_INPUT', `A server certificate must be valid for 1 to 3650 days, not ${days}.`)
  }
  const caCertificate = new x509.X509Certificate(ca.certPem)
  const keys = await globalThis.crypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])
  const notBefore = new Date(Date.now() - BACKDATE_MS)
  const notAfter = new Date(Math.min(Date.now() + days * DAY_MS, ca.notAfter.getTime()))
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [{ CN: [hosts[0]!.slice(0, 64)] }],
    issuer: caCertificate.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: signingAlgorithm(ca.privateKey),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((host) => (isIP(host) ? { type: 'ip', value: host } : { type: 'dns', value: host })),
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCertificate),
    ],
  })
  const keyPem = pem(
    'PRIVATE KEY',
    Buffer.from(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  )
  return makeServerCertificate({ certPem: `${certificate.toString('pem')}\n`, keyPem, hosts, notAfter })
}

/**
 * A server certificate and key the site brings (from its own PKI). Checks that the key belongs to the certificate,
 * that it is valid now, and, when the CA is given, that the CA signed it.
 */
export function loadServerCertificate(input: {
  certPem: string
  keyPem: string
  caPem?: string
  source?: string
}): ServerCertificate {
  const where = input.source ? ` (${input.source})` : ''
  const certificate = parseCertificate(input.certPem, `The server certificate${where}`)
  const key = parsePrivateKey(input.keyPem, `The server key${where}`)
  if (!certificate.checkPrivateKey(key)) {
    throw new AirgapError(
      'E_INPUT',
      `The server key${where} does not belong to the server certificate ${certificate.subject}.`,
      { hints: ['Give the key that was generated together with this certificate.'] },
    )
  }
  checkValidity(certificate, `The server certificate${where}`)
  if (input.caPem !== undefined) {
    const ca = parseCertificate(input.caPem, `The CA certificate${where}`)
    if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) {
      throw new AirgapError(
        'E_INPUT',
        `The server certificate ${certificate.subject}${where} was not issued by the CA ${ca.subject}.`,
        { hints: ['Give the CA that signed the server certificate, so nodes can be told to trust it.'] },
      )
    }
  }
  const hosts = (certificate.subjectAltName ?? '')
    .split(',')
    .map((part) => part.trim().replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean)
  return makeServerCertificate({
    certPem: input.certPem.endsWith('\n') ? input.certPem : `${input.certPem}\n`,
    keyPem: input.keyPem,
    hosts,
    notAfter: new Date(certificate.validTo),
  })
}

async function generateSiteCa(commonName: string): Promise<{ ca: SiteCa; keyPem: string }> {
  const x509 = await loadX509()
  const keys = await globalThis.crypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])
  const notBefore = new Date(Date.now() - BACKDATE_MS)
  const notAfter = new Date(Date.now() + CA_DAYS * DAY_MS)
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: [commonName.slice(0, 64)] }, { O: ['astrago-airgap'] }],
    keys,
    notBefore,
    notAfter,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } satisfies EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  const certPem = `${certificate.toString('pem')}\n`
  const keyPem = pem(
    'PRIVATE KEY',
    Buffer.from(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  )
  // Keep a non-extractable copy of the key in memory; the PEM only goes to the key file.
  const privateKey = await importSigningKey(createPrivateKey(keyPem))
  const parsed = new NodeX509Certificate(certPem)
  return {
    ca: makeSiteCa({
      certPem,
      fingerprint: parsed.fingerprint256,
      subject: parsed.subject,
      notAfter,
      created: true,
      privateKey,
    }),
    keyPem,
  }
}

/** Imports a private key (any format node reads) as a WebCrypto signing key: ECDSA P-256/P-384/P-521 or RSA. */
async function importSigningKey(key: KeyObject): Promise<CryptoKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' })
  const algorithm = webCryptoAlgorithm(key)
  return await globalThis.crypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign'])
}

function webCryptoAlgorithm(key: KeyObject): webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams {
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'ec') {
    const curves: Record<string, string> = {
      prime256v1: 'P-256',
      'P-256': 'P-256',
      secp384r1: 'P-384',
      'P-384': 'P-384',
      secp521r1: 'P-521',
      'P-521': 'P-521',
    }
    const namedCurve = curves[details.namedCurve ?? '']
    if (namedCurve) return { name: 'ECDSA', namedCurve }
  }
  if (key.asymmetricKeyType === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
  throw new AirgapError(
    'E_INPUT',
    `The CA key is ${key.asymmetricKeyType}${details.namedCurve ? ` (${details.namedCurve})` : ''}; the site CA must be an RSA or ECDSA (P-256, P-384, P-521) key.`,
  )
}

function signingAlgorithm(key: CryptoKey): EcdsaParams | webcrypto.RsaHashedImportParams {
  const algorithm = key.algorithm
  if (algorithm.name === 'ECDSA') {
    const hashes: Record<string, string> = { 'P-256': 'SHA-256', 'P-384': 'SHA-384', 'P-521': 'SHA-512' }
    return { name: 'ECDSA', hash: hashes[(algorithm as EcKeyAlgorithm).namedCurve] ?? 'SHA-256' }
  }
  return { name: algorithm.name, hash: 'SHA-256' }
}

function parseCertificate(text: string, what: string): NodeX509Certificate {
  if (!/-----BEGIN CERTIFICATE-----/.test(text)) {
    throw new AirgapError('E_INPUT', `${what} is not a PEM certificate (no BEGIN CERTIFICATE line).`)
  }
  try {
    return new NodeX509Certificate(text)
  } catch (error) {
    throw new AirgapError('E_INPUT', `${what} cannot be read: ${(error as Error).message}`, { cause: error })
  }
}

function parsePrivateKey(text: string, what: string): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new AirgapError('E_INPUT', `${what} is not a PEM private key (no BEGIN … PRIVATE KEY line).`)
  }
  if (/ENCRYPTED/.test(text)) {
    throw new AirgapError('E_INPUT', `${what} is encrypted; give it without a passphrase.`, {
      hints: ['Decrypt it with `openssl pkey -in key.pem -out key-plain.pem` and keep that file mode 0600.'],
    })
  }
  try {
    return createPrivateKey(text)
  } catch {
    // The parser's message could quote key material; say only that it failed.
    throw new AirgapError('E_INPUT', `${what} cannot be read as a private key.`)
  }
}

function checkValidity(certificate: NodeX509Certificate, what: string): void {
  const now = Date.now()
  const validFrom = Date.parse(certificate.validFrom)
  const validTo = Date.parse(certificate.validTo)
  if (validTo <= now) {
    throw new AirgapError('E_INPUT', `${what} ${certificate.subject} expired on ${certificate.validTo}.`, {
      hints: [
        'Renew it, or move the state folder aside to generate a new site CA (nodes must then be set up again).',
      ],
    })
  }
  if (validFrom > now + BACKDATE_MS) {
    throw new AirgapError(
      'E_INPUT',
      `${what} ${certificate.subject} is not valid before ${certificate.validFrom}.`,
      {
        hints: ["Check this machine's clock."],
      },
    )
  }
}

/** Hosts as SANs: brackets off IPv6 addresses, lower-case DNS names, duplicates dropped; bad names are E_INPUT. */
export function normalizeHosts(hosts: string[]): string[] {
  const out: string[] = []
  for (const raw of hosts) {
    const host = raw.trim().replace(/^\[(.*)\]$/, '$1')
    const value = isIP(host) ? host : host.toLowerCase()
    if (
      !isIP(value) &&
      !/^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(value)
    ) {
      throw new AirgapError(
        'E_INPUT',
        `"${raw}" is neither an IP address nor a DNS name, so it cannot be in the server certificate.`,
        {
          hints: [
            'Give the addresses and names nodes use to reach the site server, e.g. 10.0.0.5 or registry.site.local.',
          ],
        },
      )
    }
    if (!out.includes(value)) out.push(value)
  }
  if (out.length === 0) {
    throw new AirgapError('E_INPUT', 'The server certificate needs at least one DNS name or IP address.')
  }
  return out
}

function makeSiteCa(fields: Omit<SiteCa, 'privateKey'> & { privateKey: CryptoKey }): SiteCa {
  const { privateKey, ...visible } = fields
  return redact({ ...visible }, 'privateKey', privateKey) as SiteCa
}

function makeServerCertificate(fields: ServerCertificate): ServerCertificate {
  const { keyPem, ...visible } = fields
  return redact({ ...visible }, 'keyPem', keyPem) as ServerCertificate
}

function withDir(ca: SiteCa, dir: string): SiteCa {
  return makeSiteCa({ ...ca, privateKey: ca.privateKey, dir })
}

/**
 * Attaches a secret as a non-enumerable, read-only property: JSON.stringify, spreading and util.inspect (hence
 * console.log and the event renderers) never show it.
 */
function redact<T extends object>(target: T, name: string, secret: unknown): T {
  Object.defineProperty(target, name, { value: secret, enumerable: false, writable: false })
  Object.defineProperty(target, inspect.custom, {
    value: () => ({ ...target, [name]: '[redacted]' }),
    enumerable: false,
  })
  return target
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new AirgapError('E_ENVIRONMENT', `Cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    })
  }
}

async function tightenKeyMode(keyFile: string): Promise<void> {
  const mode = (await stat(keyFile)).mode & 0o777
  if ((mode & 0o077) !== 0) await chmod(keyFile, 0o600)
}

function serialNumber(): string {
  const bytes = randomBytes(16)
  bytes[0] = bytes[0]! & 0x7f // positive, as RFC 5280 requires
  if (bytes[0] === 0) bytes[0] = 1
  return bytes.toString('hex')
}

function pem(label: string, der: Buffer): string {
  const body = der.toString('base64').replace(/.{1,64}/g, '$&\n')
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`
}

function toPem(certificate: NodeX509Certificate): string {
  return pem('CERTIFICATE', certificate.raw)
}
