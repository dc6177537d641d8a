import { describe, expect, it } from 'vitest'
import { stripClearsign } from '../../src/packages/apt-signature.js'

describe('clearsigned documents', () => {
  it('yields the signed text, undoing dash-escaping, for sources marked trusted', () => {
    const document = [
      '-----BEGIN PGP SIGNED MESSAGE-----',
      'Hash: SHA512',
      '',
      'Origin: Debian',
      '- -----not a marker',
      'SHA256:',
      ' abc 1 main/binary-amd64/Packages',
      '-----BEGIN PGP SIGNATURE-----',
      '',
      'iQIzBAEBCgAdFiEE',
      '-----END PGP SIGNATURE-----',
      '',
    ].join('\n')
    expect(stripClearsign(document)).toBe(
      'Origin: Debian\n-----not a marker\nSHA256:\n abc 1 main/binary-amd64/Packages\n',
    )
    expect(stripClearsign('Origin: Debian\n')).toBe('Origin: Debian\n')
  })
})
