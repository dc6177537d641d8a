/**
 * The flag parsers of src/cli/flag-*.ts: KEY=VALUE (--mirror, --mirror-keyring, --username), sizes (--split-size) and
 * --set. Good values, edge cases, and bad values that must fail as E_USAGE naming the flag and saying what to write.
 */
import { Parser } from '@oclif/core'
import { describe, expect, it } from 'vitest'
import { describeError } from '../../src/cli/base-command.js'
import {
  keyValueRecord,
  mirrorFlag,
  mirrorKeyringFlag,
  parseKeyValue,
  parseMirror,
  parseMirrorKeyring,
  parseRegistryLogin,
  usernameFlag,
} from '../../src/cli/flag-key-value.js'
import { chartValuesFromSettings, parseChartValue, setFlag } from '../../src/cli/flag-set.js'
import { parseSize, splitSizeFlag } from '../../src/cli/flag-size.js'
import { readCredentials } from '../../src/cli/input.js'
import { AirgapError } from '../../src/errors.js'

function failure(fn: () => unknown): AirgapError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(AirgapError)
    return error as AirgapError
  }
  throw new Error('expected a failure')
}

describe('KEY=VALUE', () => {
  it('splits at the first "=", so the value may hold more', () => {
    expect(parseKeyValue('x', 'a=b')).toEqual(['a', 'b'])
    expect(parseKeyValue('x', 'nvcr.io=$oauthtoken')).toEqual(['nvcr.io', '$oauthtoken'])
    expect(parseKeyValue('x', 'k=v=w==')).toEqual(['k', 'v=w=='])
  })

  it.each([
    ['novalue', 'there is no "="'],
    ['=value', 'the part before "=" is empty'],
    ['key=', 'the part after "=" is empty'],
    ['', 'there is no "="'],
  ])('refuses %j: %s', (text, why) => {
    const e = failure(() => parseKeyValue('mirror-keyring', text, 'URL-PREFIX=KEYRING'))
    expect(e.code).toBe('E_USAGE')
    expect(e.message).toBe(`--mirror-keyring ${text}: expected URL-PREFIX=KEYRING, but ${why}.`)
    expect(e.hints[0]).toMatch(/^Write it as --mirror-keyring /)
  })

  it('--mirror takes a registry or a URL prefix, and an http(s) URL', () => {
    expect(parseMirror('docker.io=https://harbor.corp/v2/proxy')).toEqual({
      key: 'docker.io',
      value: 'https://harbor.corp/v2/proxy',
    })
    expect(parseMirror('https://get.helm.sh=http://127.0.0.1:9/helm')).toEqual({
      key: 'https://get.helm.sh',
      value: 'http://127.0.0.1:9/helm',
    })
    for (const bad of ['docker.io=harbor.corp', 'docker.io=ftp://x', 'docker.io=https://', 'docker.io'])
      expect(failure(() => parseMirror(bad)).message).toMatch(/^--mirror docker\.io/)
    expect(failure(() => parseMirror('docker.io=harbor.corp')).message).toContain(
      '"harbor.corp" is not an http:// or https:// URL',
    )
  })

  it('--mirror-keyring gives a URL prefix and a keyring file', () => {
    expect(parseMirrorKeyring('https://apt.corp=/k.gpg')).toEqual({
      key: 'https://apt.corp',
      value: '/k.gpg',
    })
    expect(failure(() => parseMirrorKeyring('https://apt.corp')).code).toBe('E_USAGE')
  })

  it('keyValueRecord: a later key wins, nothing gives {}', () => {
    expect(keyValueRecord(undefined)).toEqual({})
    expect(
      keyValueRecord([
        { key: 'a', value: '1' },
        { key: 'b', value: '2' },
        { key: 'a', value: '3' },
      ]),
    ).toEqual({ a: '3', b: '2' })
  })
})

describe('--username', () => {
  it('REGISTRY=USER, or a bare USER only where the command has its own registry', () => {
    expect(parseRegistryLogin('harbor.site:443=admin', false)).toEqual({
      registry: 'harbor.site:443',
      username: 'admin',
    })
    expect(parseRegistryLogin('admin', true)).toEqual({ username: 'admin' })
    expect(parseRegistryLogin('r=admin', true)).toEqual({ registry: 'r', username: 'admin' })
    const e = failure(() => parseRegistryLogin('admin', false))
    expect(e.message).toBe('--username admin: expected REGISTRY=USER, but there is no "=".')
    expect(failure(() => parseRegistryLogin('', true)).code).toBe('E_USAGE')
    expect(failure(() => parseRegistryLogin('r=', true)).code).toBe('E_USAGE')
  })

  it('readCredentials puts a bare USER on the default registry, and takes raw strings too', async () => {
    expect(
      await readCredentials([{ username: 'site' }, { registry: 'r', username: 'u' }], false, 'h:5000'),
    ).toEqual({
      'h:5000': { username: 'site', password: '' },
      r: { username: 'u', password: '' },
    })
    expect(await readCredentials(['r=u'], false)).toEqual({ r: { username: 'u', password: '' } })
    await expect(readCredentials([{ username: 'site' }], false)).rejects.toMatchObject({ code: 'E_USAGE' })
    expect(await readCredentials(undefined, false)).toEqual({})
  })
})

describe('sizes', () => {
  it.each([
    ['4G', 4 * 1024 ** 3],
    ['4g', 4 * 1024 ** 3],
    ['4GiB', 4 * 1024 ** 3],
    ['4GB', 4 * 1024 ** 3],
    [' 700 M ', 700 * 1024 ** 2],
    ['1M', 1024 ** 2],
    ['1024K', 1024 ** 2],
    ['1T', 1024 ** 4],
    ['1048576', 1048576],
    ['4.3G', 4617089843 - (4617089843 % 512)],
    ['1048577', 1048576], // rounded down to a whole tar block
  ])('%j is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes)
    expect(parseSize(text) % 512).toBe(0)
  })

  it.each(['', '4X', 'G', '-4G', '4 G G', '1e9', '4,5G', '0x100000'])('%j is not a size', (text) => {
    const e = failure(() => parseSize(text))
    expect(e.code).toBe('E_USAGE')
    expect(e.message).toBe(`"${text}" is not a size; write it like 4G, 700M or 4294967296.`)
    expect(e.hints.length).toBeGreaterThan(0)
  })

  it('refuses a volume under 1M, and one too large to count', () => {
    expect(failure(() => parseSize('1023K')).message).toBe('Split size 1023K is too small; use at least 1M.')
    expect(failure(() => parseSize('0')).code).toBe('E_USAGE')
    expect(failure(() => parseSize('99999999999T')).message).toMatch(/too large/)
    expect(parseSize('10K', 1024)).toBe(10240)
  })
})

describe('--set', () => {
  it('CHART.KEY=VALUE, typed booleans and integers, the rest strings', () => {
    expect(parseChartValue('gpu-operator.driver.enabled=false')).toEqual({
      chart: 'gpu-operator',
      key: ['driver', 'enabled'],
      value: false,
    })
    expect(parseChartValue('c.replicas=3').value).toBe(3)
    expect(parseChartValue('c.offset=-2').value).toBe(-2)
    expect(parseChartValue('c.on=true').value).toBe(true)
    expect(parseChartValue('c.ratio=1.5').value).toBe('1.5')
    expect(parseChartValue('c.tag=v1=2').value).toBe('v1=2')
    expect(parseChartValue('c.True=True').value).toBe('True')
  })

  it.each([
    ['c.key', 'there is no "="'],
    ['c.key=', 'the value after "=" is empty'],
    ['chart=1', 'there is no KEY after the chart name'],
    ['.key=1', 'the chart name before the first "." is empty'],
    ['=1', 'the chart name before the first "." is empty'],
    ['c.a..b=1', 'the key has an empty part between dots'],
    ['c.a.=1', 'the key has an empty part between dots'],
  ])('refuses %j: %s', (text, why) => {
    const e = failure(() => parseChartValue(text))
    expect(e.code).toBe('E_USAGE')
    expect(e.message).toBe(`--set ${text}: expected CHART.KEY=VALUE, but ${why}.`)
  })

  it('builds nested values per chart; a later --set wins, also over a scalar on its path', () => {
    expect(chartValuesFromSettings(undefined)).toEqual({})
    expect(
      chartValuesFromSettings(
        ['a.x.y=1', 'a.x.z=two', 'b.on=true', 'a.x.y=2', 'a.s=str', 'a.s.t=3'].map(parseChartValue),
      ),
    ).toEqual({ a: { x: { y: 2, z: 'two' }, s: { t: 3 } }, b: { on: true } })
  })
})

describe('the flag definitions', () => {
  const flags = {
    mirror: mirrorFlag,
    'mirror-keyring': mirrorKeyringFlag,
    'split-size': splitSizeFlag,
    set: setFlag,
    username: usernameFlag({ description: 'u' }),
    user: usernameFlag({ description: 'u', bareAllowed: true }),
  }

  it('hand the command typed values', async () => {
    const { flags: parsed } = await Parser.parse(
      [
        '--mirror',
        'docker.io=http://m/d',
        '--mirror',
        'ghcr.io=http://m/g',
        '--mirror-keyring',
        'https://a=/k',
        '--split-size',
        '4G',
        '--set',
        'c.a=1',
        '--username',
        'r=u',
        '--user',
        'site',
      ],
      { flags },
    )
    expect(parsed.mirror).toEqual([
      { key: 'docker.io', value: 'http://m/d' },
      { key: 'ghcr.io', value: 'http://m/g' },
    ])
    expect(parsed['mirror-keyring']).toEqual([{ key: 'https://a', value: '/k' }])
    expect(parsed['split-size']).toBe(4 * 1024 ** 3)
    expect(parsed.set).toEqual([{ chart: 'c', key: ['a'], value: 1 }])
    expect(parsed.username).toEqual([{ registry: 'r', username: 'u' }])
    expect(parsed.user).toEqual([{ username: 'site' }])
  })

  it.each([
    ['--split-size', '4X'],
    ['--mirror', 'docker.io'],
    ['--mirror-keyring', 'k'],
    ['--set', 'c=1'],
    ['--username', 'bob'],
  ])('fail on %s %s with the flag named, before the command runs', async (flag, value) => {
    const error = await Parser.parse([flag, value], { flags }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_USAGE')
    expect((error as AirgapError).message).toContain(`Parsing ${flag}`)
  })
})

describe('a flag parse error, as the command base shows it', () => {
  it('names the flag once: oclif\'s "Parsing --FLAG" wrapper is taken off', async () => {
    const flags = { 'split-size': splitSizeFlag, set: setFlag }
    const size = describeError(await Parser.parse(['--split-size', '4X'], { flags }).catch((e: unknown) => e))
    expect(size.code).toBe('E_USAGE')
    expect(size.message).toBe('--split-size: "4X" is not a size; write it like 4G, 700M or 4294967296.')
    expect(size.hints.length).toBeGreaterThan(0)
    const set = describeError(await Parser.parse(['--set', 'c=1'], { flags }).catch((e: unknown) => e))
    expect(set.message).toBe('--set c=1: expected CHART.KEY=VALUE, but there is no KEY after the chart name.')
  })
})
