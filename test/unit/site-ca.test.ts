import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import {
  issueServerCertificate,
  loadOrCreateSiteCa,
  loadServerCertificate,
  loadSiteCa,
  normalizeHosts,
  type SiteCa,
} from '../../src/serve/site-ca.js'
import { findTool } from '../support/tools.js'

async function rejection(promise: Promise<unknown>): Promise<AirgapError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(AirgapError)
    return error as AirgapError
  }
  throw new Error('expected a rejection')
}

function thrown(fn: () => unknown): AirgapError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(AirgapError)
    return error as AirgapError
  }
  throw new Error('expected an error')
}

describe('site CA', () => {
  let work: string
  let stateDir: string
  let ca: SiteCa
  const openssl = (args: string[], input?: string) =>
    execFileSync(findTool('openssl'), args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] })

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-site-ca-'))
    stateDir = join(work, 'state', 'tls')
    ca = await loadOrCreateSiteCa(stateDir, { commonName: 'unit-test site CA' })
  })

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('creates a CA in the state folder: ca.crt, and ca.key with mode 0600 in a 0700 folder', () => {
    expect(ca.created).toBe(true)
    expect(ca.dir).toBe(stateDir)
    expect(statSync(join(stateDir, 'private', 'ca.key')).mode & 0o777).toBe(0o600)
    expect(statSync(stateDir).mode & 0o777).toBe(0o700)
    const onDisk = readFileSync(join(stateDir, 'ca.crt'), 'utf8')
    expect(onDisk).toBe(ca.certPem)
    const certificate = new X509Certificate(onDisk)
    expect(certificate.ca).toBe(true)
    expect(certificate.subject).toContain('CN=unit-test site CA')
    expect(certificate.fingerprint256).toBe(ca.fingerprint)
    expect(certificate.checkPrivateKey).toBeTypeOf('function')
    // openssl agrees: a CA (basicConstraints CA:TRUE, critical), allowed to sign certificates, P-256
    const text = openssl(['x509', '-noout', '-text'], onDisk)
    expect(text).toMatch(/CA:TRUE/)
    expect(text).toMatch(/Certificate Sign/)
    expect(text).toMatch(/prime256v1|P-256/)
    expect(openssl(['pkey', '-in', join(stateDir, 'private', 'ca.key'), '-noout', '-text'])).toMatch(
      /prime256v1|P-256/,
    )
  })

  it('reuses the CA from the folder on later runs', async () => {
    const again = await loadOrCreateSiteCa(stateDir)
    expect(again.created).toBe(false)
    expect(again.certPem).toBe(ca.certPem)
    expect(again.fingerprint).toBe(ca.fingerprint)
    // and it still signs for the same CA
    const server = await issueServerCertificate(again, { hosts: ['127.0.0.1'] })
    expect(new X509Certificate(server.certPem).verify(new X509Certificate(ca.certPem).publicKey)).toBe(true)
  })

  it('tightens a key file that became readable by others back to 0600', async () => {
    const dir = join(work, 'loose')
    await loadOrCreateSiteCa(dir)
    chmodSync(join(dir, 'private', 'ca.key'), 0o644)
    await loadOrCreateSiteCa(dir)
    expect(statSync(join(dir, 'private', 'ca.key')).mode & 0o777).toBe(0o600)
  })

  it('issues a server certificate with every DNS name and IP as a subjectAltName, signed by the CA', async () => {
    const server = await issueServerCertificate(ca, {
      hosts: ['127.0.0.1', 'localhost', 'Registry.Site.Local', '[::1]', '10.0.0.5', '127.0.0.1'],
      days: 30,
    })
    expect(server.hosts).toEqual(['127.0.0.1', 'localhost', 'registry.site.local', '::1', '10.0.0.5'])
    const certificate = new X509Certificate(server.certPem)
    expect(certificate.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true)
    expect(certificate.checkIssued(new X509Certificate(ca.certPem))).toBe(true)
    expect(certificate.checkIP('127.0.0.1')).toBe('127.0.0.1')
    expect(certificate.checkIP('10.0.0.5')).toBe('10.0.0.5')
    expect(certificate.checkIP('::1')).toBe('::1')
    expect(certificate.checkHost('localhost')).toBe('localhost')
    expect(certificate.checkHost('registry.site.local')).toBe('registry.site.local')
    expect(certificate.checkHost('other.site.local')).toBeUndefined()
    expect(certificate.checkIP('10.0.0.6')).toBeUndefined()
    expect(certificate.ca).toBe(false)
    expect(certificate.checkPrivateKey).toBeTypeOf('function')
    const days = (Date.parse(certificate.validTo) - Date.now()) / 86_400_000
    expect(days).toBeGreaterThan(29)
    expect(days).toBeLessThanOrEqual(30)

    // The real openssl sees the same names, a serverAuth certificate, and a chain that verifies.
    const text = openssl(['x509', '-noout', '-text'], server.certPem)
    expect(text).toMatch(/IP Address:127\.0\.0\.1/)
    expect(text).toMatch(/DNS:localhost/)
    expect(text).toMatch(/DNS:registry\.site\.local/)
    expect(text).toMatch(/IP Address:0:0:0:0:0:0:0:1/)
    expect(text).toMatch(/TLS Web Server Authentication/)
    writeFileSync(join(work, 'server.crt'), server.certPem)
    expect(
      openssl([
        'verify',
        '-CAfile',
        join(stateDir, 'ca.crt'),
        '-purpose',
        'sslserver',
        join(work, 'server.crt'),
      ]),
    ).toMatch(/OK/)
    // and the key matches the certificate
    expect(certificate.checkPrivateKey((await import('node:crypto')).createPrivateKey(server.keyPem))).toBe(
      true,
    )
  })

  it('never shows a private key in JSON, spreads or inspect output', async () => {
    const server = await issueServerCertificate(ca, { hosts: ['localhost'] })
    for (const value of [ca, server]) {
      expect(JSON.stringify(value)).not.toMatch(/PRIVATE KEY/)
      expect(inspect(value, { depth: 5, showHidden: false })).not.toMatch(/PRIVATE KEY/)
      expect(JSON.stringify({ ...value })).not.toMatch(/PRIVATE KEY/)
    }
    expect(inspect(ca)).toMatch(/redacted/)
    // but the server key is there for whoever asks for it explicitly
    expect(server.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/)
    expect(readFileSync(join(stateDir, 'private', 'ca.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/)
  })

  it('accepts a CA the site brings (an RSA CA made by openssl) and issues with it', async () => {
    const dir = join(work, 'given')
    execFileSync('mkdir', ['-p', dir])
    openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '3',
      '-subj',
      '/CN=corporate CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      join(dir, 'ca.key'),
      '-out',
      join(dir, 'ca.crt'),
    ])
    const given = await loadSiteCa({
      certPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
      keyPem: readFileSync(join(dir, 'ca.key'), 'utf8'),
    })
    expect(given.created).toBe(false)
    const server = await issueServerCertificate(given, { hosts: ['10.1.2.3'] })
    const certificate = new X509Certificate(server.certPem)
    expect(certificate.verify(new X509Certificate(given.certPem).publicKey)).toBe(true)
    expect(certificate.checkIP('10.1.2.3')).toBe('10.1.2.3')
    writeFileSync(join(dir, 'server.crt'), server.certPem)
    expect(openssl(['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'server.crt')])).toMatch(/OK/)
  })

  it('refuses a given certificate and key that do not belong together, with E_INPUT', async () => {
    const other = await loadOrCreateSiteCa(join(work, 'other'))
    const otherKey = readFileSync(join(work, 'other', 'private', 'ca.key'), 'utf8')
    const mismatch = await rejection(
      loadSiteCa({ certPem: ca.certPem, keyPem: otherKey, source: 'site.yaml' }),
    )
    expect(mismatch.code).toBe('E_INPUT')
    expect(mismatch.message).toMatch(/does not belong/)
    expect(mismatch.message).toMatch(/site\.yaml/)
    expect(mismatch.message).not.toMatch(/PRIVATE KEY/)

    // the same mismatch in the state folder is reported too, not silently replaced
    const broken = join(work, 'broken')
    await loadOrCreateSiteCa(broken)
    writeFileSync(join(broken, 'private', 'ca.key'), otherKey)
    expect((await rejection(loadOrCreateSiteCa(broken))).code).toBe('E_INPUT')

    const server = await issueServerCertificate(ca, { hosts: ['localhost'] })
    const serverMismatch = thrown(() => loadServerCertificate({ certPem: server.certPem, keyPem: otherKey }))
    expect(serverMismatch.code).toBe('E_INPUT')
    expect(serverMismatch.message).toMatch(/does not belong/)
    const notIssued = thrown(() =>
      loadServerCertificate({ certPem: server.certPem, keyPem: server.keyPem, caPem: other.certPem }),
    )
    expect(notIssued.message).toMatch(/not issued by/)
    const good = loadServerCertificate({ certPem: server.certPem, keyPem: server.keyPem, caPem: ca.certPem })
    expect(good.hosts).toEqual(['localhost'])
  })

  it('refuses what is not a usable CA with clear E_INPUT errors', async () => {
    const server = await issueServerCertificate(ca, { hosts: ['localhost'] })
    const notCa = await rejection(loadSiteCa({ certPem: server.certPem, keyPem: server.keyPem }))
    expect(notCa.code).toBe('E_INPUT')
    expect(notCa.message).toMatch(/not a CA certificate/)

    const garbage = await rejection(loadSiteCa({ certPem: 'hello', keyPem: server.keyPem }))
    expect(garbage.message).toMatch(/not a PEM certificate/)
    const badKey = await rejection(
      loadSiteCa({
        certPem: ca.certPem,
        keyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
      }),
    )
    expect(badKey.code).toBe('E_INPUT')
    expect(badKey.message).toMatch(/cannot be read/)

    const half = join(work, 'half')
    await loadOrCreateSiteCa(half)
    unlinkSync(join(half, 'private', 'ca.key'))
    const incomplete = await rejection(loadOrCreateSiteCa(half))
    expect(incomplete.code).toBe('E_INPUT')
    expect(incomplete.message).toMatch(/incomplete/)

    expect(thrown(() => normalizeHosts(['bad host'])).code).toBe('E_INPUT')
    expect(thrown(() => normalizeHosts([])).code).toBe('E_INPUT')
    expect((await rejection(issueServerCertificate(ca, { hosts: ['x'], days: 0 }))).code).toBe('E_INPUT')
  })
  it('moves the key an earlier version kept beside ca.crt into private/, and keeps using the same CA', async () => {
    const dir = join(work, 'old-layout')
    const created = await loadOrCreateSiteCa(dir)
    execFileSync('mv', [join(dir, 'private', 'ca.key'), join(dir, 'ca.key')])
    const reloaded = await loadOrCreateSiteCa(dir)
    expect(reloaded.created).toBe(false)
    expect(reloaded.certPem).toBe(created.certPem)
    expect(existsSync(join(dir, 'ca.key'))).toBe(false)
    expect(statSync(join(dir, 'private', 'ca.key')).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'private')).mode & 0o777).toBe(0o700)
  })
})
