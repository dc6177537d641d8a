/**
 * Checks an OpenPGP v4 EdDSA (ed25519) detached signature against one public key with Node's own crypto, no gpgv:
 * what `verify` needs without `--key` to tell whether bundle.json still matches the signature made with the key it
 * names, also on a site where only the self-contained installer runs and GnuPG is missing. Trust decisions (`--key`:
 * key validity, expiry, revocation) stay with gpgv. Anything that is not this exact shape is `unsupported`, and the
 * caller falls back to gpgv.
 */
import { createHash, createPublicKey, verify } from 'node:crypto'
import { dearmorKeys } from '../packages/gpgv.js'
import { firstPacket, subpackets } from './sign-packet.js'

export type NativeCheck =
  | { result: 'good'; fingerprint: string }
  | { result: 'bad' }
  | { result: 'other-key' }
  | { result: 'unsupported' }

const EDDSA_LEGACY = 22
/** The curve OID of Ed25519 in OpenPGP (1.3.6.1.4.1.11591.15.1). */
const ED25519_OID = Buffer.from('2b06010401da470f01', 'hex')
const HASHES: Record<number, string> = { 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' }

export function checkEd25519Signature(data: Buffer, signature: Buffer, armoredKey: string): NativeCheck {
  try {
    const key = readPublicKey(dearmorKeys(armoredKey))
    const sig = readSignature(signature)
    if (!key || !sig) return { result: 'unsupported' }
    if (sig.issuer && !key.fingerprint.endsWith(sig.issuer)) return { result: 'other-key' }
    const digest = createHash(sig.hash).update(data).update(sig.hashed).update(sig.trailer).digest()
    if (digest[0] !== sig.left16[0] || digest[1] !== sig.left16[1]) return { result: 'bad' }
    const publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: key.point.toString('base64url') },
      format: 'jwk',
    })
    return verify(null, digest, publicKey, sig.rs)
      ? { result: 'good', fingerprint: key.fingerprint }
      : { result: 'bad' }
  } catch {
    return { result: 'unsupported' }
  }
}

/** The first packet of a binary key: a v4 EdDSA Ed25519 primary key, its fingerprint and its 32-byte point. */
function readPublicKey(bytes: Buffer): { fingerprint: string; point: Buffer } | undefined {
  const packet = firstPacket(bytes)
  if (packet?.tag !== 6) return undefined
  const body = packet.body
  if (body[0] !== 4 || body[5] !== EDDSA_LEGACY) return undefined
  const oidLength = body[6]!
  if (!body.subarray(7, 7 + oidLength).equals(ED25519_OID)) return undefined
  const mpi = readMpi(body, 7 + oidLength)
  if (mpi?.value.length !== 33 || mpi.value[0] !== 0x40) return undefined
  const header = Buffer.from([0x99, body.length >> 8, body.length & 0xff])
  const fingerprint = createHash('sha1').update(header).update(body).digest('hex').toUpperCase()
  return { fingerprint, point: mpi.value.subarray(1) }
}

interface ParsedSignature {
  hash: string
  /** Version through the hashed subpackets: what is hashed after the data. */
  hashed: Buffer
  trailer: Buffer
  left16: Buffer
  /** r and s, 32 bytes each. */
  rs: Buffer
  /** Issuer fingerprint or key ID (upper-case hex), when named. */
  issuer?: string
}

function readSignature(bytes: Buffer): ParsedSignature | undefined {
  const packet = firstPacket(bytes)
  if (packet?.tag !== 2) return undefined
  const body = packet.body
  // v4, a signature of a binary document, EdDSA.
  if (body[0] !== 4 || body[1] !== 0x00 || body[2] !== EDDSA_LEGACY) return undefined
  const hash = HASHES[body[3]!]
  if (!hash) return undefined
  const hashedLength = body.readUInt16BE(4)
  const hashed = body.subarray(0, 6 + hashedLength)
  const unhashedAt = 6 + hashedLength
  const unhashedLength = body.readUInt16BE(unhashedAt)
  const left16At = unhashedAt + 2 + unhashedLength
  const left16 = body.subarray(left16At, left16At + 2)
  const r = readMpi(body, left16At + 2)
  const s = r && readMpi(body, r.next)
  if (!r || !s || r.value.length > 32 || s.value.length > 32 || left16.length !== 2) return undefined
  const rs = Buffer.concat([pad32(r.value), pad32(s.value)])
  const trailer = Buffer.alloc(6)
  trailer[0] = 0x04
  trailer[1] = 0xff
  trailer.writeUInt32BE(hashed.length, 2)
  const issuer =
    findIssuer(body.subarray(6, 6 + hashedLength)) ?? findIssuer(body.subarray(unhashedAt + 2, left16At))
  return { hash, hashed, trailer, left16, rs, ...(issuer ? { issuer } : {}) }
}

function findIssuer(area: Buffer): string | undefined {
  for (const [type, data] of subpackets(area)) {
    if (type === 33 && data.length >= 21) return data.subarray(1).toString('hex').toUpperCase()
    if (type === 16 && data.length === 8) return data.toString('hex').toUpperCase()
  }
  return undefined
}

function pad32(value: Buffer): Buffer {
  return Buffer.concat([Buffer.alloc(32 - value.length), value])
}

function readMpi(body: Buffer, at: number): { value: Buffer; next: number } | undefined {
  if (at + 2 > body.length) return undefined
  const bytes = Math.ceil(body.readUInt16BE(at) / 8)
  const value = body.subarray(at + 2, at + 2 + bytes)
  return value.length === bytes ? { value, next: at + 2 + bytes } : undefined
}
