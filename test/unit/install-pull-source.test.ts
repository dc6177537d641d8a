import { describe, expect, it } from 'vitest'
import { pullSource } from '../../src/install/install-bundle.js'

/** Where the install summary says the nodes pull from, and when that is a server that ends with the command. */
describe('where nodes pull from after install', () => {
  it('names the relocated registry first, then the served or running site server', () => {
    expect(
      pullSource({ imageRegistry: 'harbor.site:443/astrago', serving: { url: 'https://10.0.0.5:8443' } }),
    ).toEqual({ kind: 'registry', where: 'harbor.site:443/astrago', endsWithCommand: false })
    expect(pullSource({ serving: { url: 'https://10.0.0.5:8443' } })).toEqual({
      kind: 'served',
      where: 'https://10.0.0.5:8443',
      endsWithCommand: true,
    })
    expect(
      pullSource({ serving: { url: 'https://10.0.0.5:8443' }, keepServing: true })?.endsWithCommand,
    ).toBe(false)
    expect(pullSource({ siteUrl: 'https://admin:8443' })).toEqual({
      kind: 'site-server',
      where: 'https://admin:8443',
      endsWithCommand: false,
    })
    expect(pullSource({})).toBeUndefined()
  })
})
