import { describe, expect, it } from 'vitest'
import { checkEd25519Signature } from '../../src/bundle/sign-openpgp.js'

/**
 * The ed25519 check Node makes without gpgv, on a signature and keys made by gpg 2.2: `gpg --quick-gen-key … ed25519`
 * and `gpg --detach-sign` of DATA (gpgv agrees with every verdict below).
 */
const DATA = Buffer.from('{"x":1}\n')
const SIGNATURE = Buffer.from(
  '88750400160a001d162104d919b958256765d7ab9bc5648aa5fefd4fc720be05026553f100000a09108aa5fefd4fc720be4e3f00fc0f5833c1e818002f9475c70d45e6d17ef9ab57c1c8244d7e80e570087fc586a100fe315074c7fe546133c8c7a8c405ac85a182ccbd21b4fd8882856ae2fccea8de09',
  'hex',
)
const SIGNER = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEZVPxABYJKwYBBAHaRw8BAQdAdEDhLjJRl5MkkPhBKuxtNYBjszcfBn9246yy
U3LgEkK0CHRhIDx0QHg+iJAEExYIADgWIQTZGblYJWdl16ubxWSKpf79T8cgvgUC
ZVPxAAIbAwULCQgHAgYVCgkICwIEFgIDAQIeAQIXgAAKCRCKpf79T8cgvvSxAQCv
WTShJvVsWzbkTxCiLPQo79WhVENfkDhXHNwL79jffQEAy2i4q4nUpKuKPAxiokhl
KGSqwWnX6bwz0jwWkIPXCw8=
=7dZx
-----END PGP PUBLIC KEY BLOCK-----
`
const OTHER = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEZVPxABYJKwYBBAHaRw8BAQdAOPRCVPkVXXpyGC4DI0r6SSR3HI5PfmYwwM+a
gKFigVu0CHRiIDx0QHg+iJAEExYIADgWIQRV/CrX42H89M6ksb02xJuvtsZqLgUC
ZVPxAAIbAwULCQgHAgYVCgkICwIEFgIDAQIeAQIXgAAKCRA2xJuvtsZqLjjuAQDT
cH2qz/PvCqkPWD2nYLWk4JZdeqEKR674UD5wznhytAEA9Q+XrTmFxX6T3CGuIpLL
514HILwoM+aKtQzOH83Lagc=
=sI8U
-----END PGP PUBLIC KEY BLOCK-----
`

describe('checkEd25519Signature', () => {
  it('accepts the signature with its key and names the fingerprint', () => {
    expect(checkEd25519Signature(DATA, SIGNATURE, SIGNER)).toEqual({
      result: 'good',
      fingerprint: 'D919B958256765D7AB9BC5648AA5FEFD4FC720BE',
    })
  })

  it('refuses changed data and a changed signature', () => {
    expect(checkEd25519Signature(Buffer.from('{"x":2}\n'), SIGNATURE, SIGNER)).toEqual({ result: 'bad' })
    const flipped = Buffer.from(SIGNATURE)
    flipped[flipped.length - 3]! ^= 1
    expect(checkEd25519Signature(DATA, flipped, SIGNER)).toEqual({ result: 'bad' })
  })

  it('tells another key apart, and leaves what it cannot read to gpgv', () => {
    expect(checkEd25519Signature(DATA, SIGNATURE, OTHER)).toEqual({ result: 'other-key' })
    expect(checkEd25519Signature(DATA, Buffer.from('not a signature'), SIGNER)).toEqual({
      result: 'unsupported',
    })
    expect(checkEd25519Signature(DATA, SIGNATURE, 'no key')).toEqual({ result: 'unsupported' })
  })
})
