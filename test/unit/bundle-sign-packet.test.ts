import { describe, expect, it } from 'vitest'
import { readSignaturePacket } from '../../src/bundle/sign-packet.js'

/** A detached ed25519 signature made by gpg 2.2 (`gpg --detach-sign`, old packet format, hashed issuer fingerprint). */
const SIGNATURE = Buffer.from(
  '88750400160a001d162104d919b958256765d7ab9bc5648aa5fefd4fc720be05026553f100000a09108aa5fefd4fc720be4e3f00fc0f5833c1e818002f9475c70d45e6d17ef9ab57c1c8244d7e80e570087fc586a100fe315074c7fe546133c8c7a8c405ac85a182ccbd21b4fd8882856ae2fccea8de09',
  'hex',
)

describe('readSignaturePacket', () => {
  it('names the issuer fingerprint, the algorithm and the signature time', () => {
    expect(readSignaturePacket(SIGNATURE)).toEqual({
      issuer: 'D919B958256765D7AB9BC5648AA5FEFD4FC720BE',
      algorithm: 22,
      created: new Date(1_700_000_000_000),
    })
  })

  it('reads the same packet in the new packet format', () => {
    const body = SIGNATURE.subarray(2)
    const newFormat = Buffer.concat([Buffer.from([0xc2, body.length]), body])
    expect(readSignaturePacket(newFormat)?.issuer).toBe('D919B958256765D7AB9BC5648AA5FEFD4FC720BE')
  })

  it('gives undefined for anything that is not a whole signature packet', () => {
    expect(readSignaturePacket(Buffer.alloc(0))).toBeUndefined()
    expect(readSignaturePacket(Buffer.from('-----BEGIN PGP SIGNATURE-----\n'))).toBeUndefined()
    expect(readSignaturePacket(SIGNATURE.subarray(0, 40))).toBeUndefined()
    // A public key packet (tag 6) is not a signature.
    expect(readSignaturePacket(Buffer.from([0x98, 0x03, 0x04, 0x00, 0x00]))).toBeUndefined()
  })
})
