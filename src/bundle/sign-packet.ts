/**
 * Reads who made an OpenPGP signature (RFC 4880 / 9580 signature packet, v4): the issuer's fingerprint (subpacket 33)
 * or key ID (subpacket 16), and when it was made (subpacket 2). Only a description for `inspect`, which must answer
 * without running gpg; it proves nothing, gpgv does that (sign-verify.ts). Input is untrusted: every length is
 * checked, and anything unexpected gives undefined.
 */
export interface SignaturePacketInfo {
  /** Upper-case hex, as gpg prints it: the fingerprint when the packet names it, else the 16-digit key ID. */
  issuer: string
  /** The public key algorithm number (22: EdDSA, 1: RSA, 27: Ed25519). */
  algorithm: number
  created?: Date
}

export function readSignaturePacket(bytes: Buffer): SignaturePacketInfo | undefined {
  try {
    const packet = firstPacket(bytes)
    if (packet?.tag !== 2 || packet.body[0] !== 4) return undefined
    const body = packet.body
    const algorithm = body[2]!
    const hashedLength = body.readUInt16BE(4)
    const hashed = body.subarray(6, 6 + hashedLength)
    if (hashed.length !== hashedLength) return undefined
    const unhashedLength = body.readUInt16BE(6 + hashedLength)
    const unhashed = body.subarray(8 + hashedLength, 8 + hashedLength + unhashedLength)
    if (unhashed.length !== unhashedLength) return undefined
    let fingerprint: string | undefined
    let keyId: string | undefined
    let created: Date | undefined
    for (const [type, data] of [...subpackets(hashed), ...subpackets(unhashed)]) {
      if (type === 33 && data.length >= 21 && !fingerprint) fingerprint = data.subarray(1).toString('hex')
      else if (type === 16 && data.length === 8 && !keyId) keyId = data.toString('hex')
      else if (type === 2 && data.length === 4 && !created) created = new Date(data.readUInt32BE(0) * 1000)
    }
    const issuer = fingerprint ?? keyId
    if (!issuer) return undefined
    return { issuer: issuer.toUpperCase(), algorithm, ...(created ? { created } : {}) }
  } catch {
    return undefined
  }
}

/** The first packet's tag and body, in the old or the new packet format, with a definite length. */
export function firstPacket(bytes: Buffer): { tag: number; body: Buffer } | undefined {
  const first = bytes[0]
  if (first === undefined || !(first & 0x80)) return undefined
  if (first & 0x40) {
    // New format: tag in the low six bits, then a one-, two- or five-octet length.
    const tag = first & 0x3f
    const l0 = bytes[1]!
    const body =
      l0 < 192
        ? exact(bytes, 2, l0)
        : l0 < 224
          ? exact(bytes, 3, ((l0 - 192) << 8) + bytes[2]! + 192)
          : l0 === 255
            ? exact(bytes, 6, bytes.readUInt32BE(2))
            : undefined
    return body && { tag, body }
  }
  // Old format: tag in bits 5..2, length type in bits 1..0.
  const tag = (first >> 2) & 0x0f
  const lengthType = first & 0x03
  const body =
    lengthType === 0
      ? exact(bytes, 2, bytes[1]!)
      : lengthType === 1
        ? exact(bytes, 3, bytes.readUInt16BE(1))
        : lengthType === 2
          ? exact(bytes, 5, bytes.readUInt32BE(1))
          : undefined
  return body && { tag, body }
}

function exact(bytes: Buffer, start: number, length: number): Buffer | undefined {
  const body = bytes.subarray(start, start + length)
  return body.length === length ? body : undefined
}

/** The subpackets of a signature's hashed or unhashed area, as [type, data]; stops at a malformed one. */
export function* subpackets(area: Buffer): Generator<[number, Buffer]> {
  let at = 0
  while (at < area.length) {
    const l0 = area[at]!
    let length: number
    if (l0 < 192) {
      length = l0
      at += 1
    } else if (l0 < 255) {
      length = ((l0 - 192) << 8) + area[at + 1]! + 192
      at += 2
    } else {
      length = area.readUInt32BE(at + 1)
      at += 5
    }
    if (length < 1 || at + length > area.length) return
    yield [area[at]! & 0x7f, area.subarray(at + 1, at + length)]
    at += length
  }
}
