import { spawnSync } from 'node:child_process'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { isAirgapError } from '../../src/errors.js'
import { decompress } from '../../src/packages/decompress.js'
import { readFilelists } from '../../src/packages/rpm-filelists.js'
import type { RpmPackage } from '../../src/packages/rpm-package.js'
import { readPrimary } from '../../src/packages/rpm-primary.js'
import { parseRepomd } from '../../src/packages/rpm-repomd.js'
import { requireSha256 } from '../../src/packages/rpm-source.js'
import { decodeXmlText } from '../../src/packages/xml-scanner.js'

const PRIMARY = `<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm">
  <name>app</name>
  <arch>x86_64</arch>
  <version epoch="1" ver="2.0~rc1" rel="3.el9"/>
  <checksum type="sha256" pkgid="YES">${'a'.repeat(64)}</checksum>
  <summary>An app &amp; its &lt;friends&gt; &#x263A; &#65;</summary>
  <description>Uses &quot;quotes&quot; and &apos;apostrophes&apos;; a &gt; in text, a <![CDATA[<raw>]]> bit</description>
  <packager></packager>
  <url>https://example.invalid/?a=1&amp;b=2</url>
  <time file="1" build="2"/>
  <size package="12345" installed="99" archive="100"/>
  <location xml:base="https://mirror.invalid/os/" href="Packages/a/app-2.0~rc1-3.el9.x86_64.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:header-range start="4504" end="6053"/>
    <rpm:provides>
      <rpm:entry name="app" flags="EQ" epoch="1" ver="2.0~rc1" rel="3.el9"/>
      <rpm:entry name="app(x86-64)" flags="EQ" epoch="1" ver="2.0~rc1" rel="3.el9"/>
      <rpm:entry name="config(app)" flags="EQ" epoch="1" ver="2.0~rc1" rel="3.el9"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="libc.so.6(GLIBC_2.34)(64bit)"/>
      <rpm:entry name="lib-a" flags="GE" epoch="0" ver="2"/>
      <rpm:entry name="(extra-a or extra-b &gt;= 1.0)"/>
      <rpm:entry name="rpmlib(PayloadIsZstd)" flags="LE" epoch="0" ver="5.4.18" rel="1"/>
    </rpm:requires>
    <rpm:conflicts>
      <rpm:entry name="old-app" flags="LT" epoch="0" ver="1.0"/>
    </rpm:conflicts>
    <rpm:obsoletes>
      <rpm:entry name="app-legacy"/>
    </rpm:obsoletes>
    <rpm:recommends>
      <rpm:entry name="app-docs"/>
    </rpm:recommends>
    <file>/etc/app.conf</file>
    <file type="dir">/etc/app.d</file>
    <file>/usr/bin/app</file>
  </format>
</package>
<package type="rpm">
  <name>lib-a</name>
  <arch>noarch</arch>
  <version epoch="0" ver="2.0" rel="1"/>
  <checksum type='sha256' pkgid='YES'>${'b'.repeat(64)}</checksum>
  <summary>a &gt; b</summary>
  <size package="10" installed="1" archive="2"/>
  <location href="lib-a-2.0-1.noarch.rpm"/>
  <format>
    <rpm:provides>
      <rpm:entry name="lib-a" flags="EQ" epoch="0" ver="2.0" rel="1"/>
    </rpm:provides>
  </format>
</package>
</metadata>
`

const FILELISTS = `<?xml version="1.0" encoding="UTF-8"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="2">
<package pkgid="${'a'.repeat(64)}" name="app" arch="x86_64">
  <version epoch="1" ver="2.0~rc1" rel="3.el9"/>
  <file>/etc/app.conf</file>
  <file type="dir">/usr/share/app</file>
  <file>/usr/share/app/data &amp; more</file>
</package>
<package pkgid="${'b'.repeat(64)}" name="lib-a" arch="noarch">
  <version epoch="0" ver="2.0" rel="1"/>
  <file>/usr/lib/lib-a</file>
</package>
</filelists>
`

/** Streams `text` in chunks of `size` bytes, so elements and multi-byte characters are split across chunks. */
function chunked(data: Buffer, size: number): Readable {
  const chunks: Buffer[] = []
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size))
  return Readable.from(chunks)
}

async function primaryOf(input: Readable): Promise<RpmPackage[]> {
  const packages: RpmPackage[] = []
  await readPrimary(input, (pkg) => packages.push(pkg))
  return packages
}

function compressWith(tool: string, data: Buffer): Buffer {
  const result = spawnSync(tool, ['-c'], { input: data })
  if (result.status !== 0) throw new Error(`${tool} failed`)
  return result.stdout
}

describe('rpm-md metadata reading', () => {
  it('parses repomd.xml', () => {
    const repomd = parseRepomd(`<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1795712126</revision>
  <data type="primary">
    <checksum type="sha256">${'C'.repeat(64)}</checksum>
    <open-checksum type="sha256">${'d'.repeat(64)}</open-checksum>
    <location href="repodata/cc-primary.xml.zst"/>
    <timestamp>1795712126</timestamp>
    <size>613</size>
    <open-size>1244</open-size>
  </data>
  <data type="group"><checksum type="sha1">ee</checksum><location href="repodata/comps.xml"/></data>
</repomd>`)
    expect(repomd.revision).toBe('1795712126')
    expect(repomd.data).toEqual([
      {
        type: 'primary',
        checksum: { type: 'sha256', value: 'c'.repeat(64) },
        openChecksum: { type: 'sha256', value: 'd'.repeat(64) },
        location: 'repodata/cc-primary.xml.zst',
        timestamp: 1795712126,
        size: 613,
        openSize: 1244,
      },
      { type: 'group', checksum: { type: 'sha1', value: 'ee' }, location: 'repodata/comps.xml' },
    ])
    expect(() => parseRepomd('<metadata/>')).toThrow(/not a repomd\.xml/)
    expect(() => parseRepomd('<repomd><data type="x"><location href="a"/></repomd>')).toThrow(/malformed XML/)
  })

  it('decodes entities, numeric references and CDATA', () => {
    expect(decodeXmlText('a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#65;&#x42; &unknown;')).toBe(
      'a & b <c> "d" \'e\' AB &unknown;',
    )
  })

  it('streams primary.xml package by package, split anywhere, keeping each raw block', async () => {
    const bytes = Buffer.from(PRIMARY)
    const whole = await primaryOf(Readable.from([bytes]))
    for (const size of [1, 7, 64, 4096]) expect(await primaryOf(chunked(bytes, size))).toEqual(whole)
    expect(whole).toHaveLength(2)
    const app = whole[0]!
    expect(app).toMatchObject({
      name: 'app',
      arch: 'x86_64',
      epoch: 1,
      version: '2.0~rc1',
      release: '3.el9',
      checksum: { type: 'sha256', value: 'a'.repeat(64) },
      size: 12345,
      location: 'Packages/a/app-2.0~rc1-3.el9.x86_64.rpm',
      locationBase: 'https://mirror.invalid/os/',
      files: ['/etc/app.conf', '/etc/app.d', '/usr/bin/app'],
      conflicts: [{ name: 'old-app', flags: 'LT', evr: { epoch: 0, version: '1.0', release: '' } }],
      obsoletes: [{ name: 'app-legacy' }],
    })
    expect(app.requires).toEqual([
      { name: '/bin/sh', pre: true },
      { name: 'libc.so.6(GLIBC_2.34)(64bit)' },
      { name: 'lib-a', flags: 'GE', evr: { epoch: 0, version: '2', release: '' } },
      { name: '(extra-a or extra-b >= 1.0)' },
      { name: 'rpmlib(PayloadIsZstd)', flags: 'LE', evr: { epoch: 0, version: '5.4.18', release: '1' } },
    ])
    expect(app.provides.map((p) => p.name)).toEqual(['app', 'app(x86-64)', 'config(app)'])
    expect(app.raw.startsWith('<package type="rpm">')).toBe(true)
    expect(app.raw.endsWith('</package>')).toBe(true)
    expect(app.raw).toContain('&#x263A;')
    expect(whole[1]).toMatchObject({ name: 'lib-a', checksum: { type: 'sha256', value: 'b'.repeat(64) } })
  })

  it('reads gz, xz and zstd compressed metadata', async () => {
    const bytes = Buffer.from(PRIMARY)
    const expected = await primaryOf(Readable.from([bytes]))
    expect(await primaryOf(decompress('p.xml.gz', chunked(gzipSync(bytes), 100)))).toEqual(expected)
    expect(await primaryOf(decompress('p.xml.xz', chunked(compressWith('xz', bytes), 100)))).toEqual(expected)
    expect(await primaryOf(decompress('p.xml.zst', chunked(compressWith('zstd', bytes), 100)))).toEqual(
      expected,
    )
    // Corrupt input is an error, not an empty repository.
    const broken = await primaryOf(decompress('p.xml.xz', Readable.from([Buffer.from('not xz')]))).catch(
      (error: unknown) => error,
    )
    expect(isAirgapError(broken) && broken.message).toMatch(/xz -dc failed/)
    expect(() => decompress('p.xml.zck', Readable.from([]))).toThrow(/zchunk/)
  })

  it('reads filelists.xml keeping only the blocks and paths asked for', async () => {
    const result = await readFilelists(chunked(Buffer.from(FILELISTS), 13), {
      pkgids: new Set(['b'.repeat(64)]),
      paths: new Set(['/usr/share/app/data & more', '/usr/lib/lib-a', '/nowhere']),
    })
    expect(result.count).toBe(2)
    expect([...result.blocks.keys()]).toEqual(['b'.repeat(64)])
    expect(result.blocks.get('b'.repeat(64))).toMatchObject({ name: 'lib-a', arch: 'noarch' })
    expect(result.blocks.get('b'.repeat(64))!.raw).toMatch(
      /^<package pkgid="b+" name="lib-a"[\s\S]*<\/package>$/,
    )
    expect(Object.fromEntries(result.providers)).toEqual({
      '/usr/share/app/data & more': ['a'.repeat(64)],
      '/usr/lib/lib-a': ['b'.repeat(64)],
    })
  })

  it('refuses what is not createrepo primary.xml', async () => {
    const bad = await primaryOf(
      Readable.from([Buffer.from('<package type="rpm"><name>x</name></package>')]),
    ).catch((error: unknown) => error)
    expect(isAirgapError(bad) && bad.message).toMatch(/without name, arch or location/)
    const mismatched = await primaryOf(
      Readable.from([Buffer.from('<package type="rpm"><name>x</arch></package>')]),
    ).catch((error: unknown) => error)
    expect(isAirgapError(mismatched) && mismatched.message).toMatch(/malformed XML/)
  })

  it('accepts only sha256 package checksums, naming the package otherwise', async () => {
    const [app] = await primaryOf(Readable.from([Buffer.from(PRIMARY)]))
    expect(() => requireSha256(app!)).not.toThrow()
    const sha1 = { ...app!, checksum: { type: 'sha1', value: 'a'.repeat(40) } }
    expect(() => requireSha256(sha1)).toThrow(
      /^app-2\.0~rc1-3\.el9\.x86_64: primary\.xml gives a sha1 checksum/,
    )
  })
})
